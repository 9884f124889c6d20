#pragma once
// Shared by the storage tests: the per-run PostgreSQL server and a way to drive coroutines.
#include "temp_postgres.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

namespace test {

// The server main.cpp starts before any test case and stops after the last one.
TempPostgres& postgres();

// Database "llmgw", migrated once by main.cpp.
inline std::string db_url() {
  return postgres().url("llmgw");
}

// Runs body() as a coroutine on a fresh io_context until it finishes; rethrows what it threw
// (including Catch2's REQUIRE failures).
template <class Body>
void run_async(Body& body) {
  boost::asio::io_context io;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, body(), [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

// Freezes the server for a scope and thaws it however the scope ends. A watchdog also thaws it after
// `limit`, so a test waiting for something that never happens (a caller-side timeout that is not
// there) fails instead of hanging the whole run.
class FrozenServer {
 public:
  explicit FrozenServer(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    postgres().freeze();
    watchdog_ = std::thread([this, limit] {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, limit, [this] { return done_; });
      postgres().thaw();
    });
  }
  ~FrozenServer() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    watchdog_.join();
  }
  FrozenServer(const FrozenServer&) = delete;
  FrozenServer& operator=(const FrozenServer&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread watchdog_;
};

}  // namespace test
