#pragma once
// One event loop of the gateway, shared-nothing (Envoy's worker model): its own io_context on its
// own thread, its own listening socket on the common address (SO_REUSEPORT: the kernel spreads
// connections), App (caches, upstream pool, sessions, limits), Redis connection and subscriber.
// Workers share only what `Shared` holds: read-only config, the PostgreSQL pool, the TLS context,
// process-wide counters and the request-log writer.
#include "cache/redis_client.hpp"
#include "cache/redis_subscriber.hpp"
#include "core/thread_name.hpp"
#include "gateway/app.hpp"
#include "gateway/http.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

namespace gw {

// Shutdown across workers: each drains its own sessions; when the last one has drained (or hit the
// grace period), the process-wide parts stop (the database pool, so a session stuck on PostgreSQL
// ends too).
class ShutdownCoordinator {
 public:
  ShutdownCoordinator(std::size_t workers, std::function<void()> all_drained)
      : remaining_(workers), all_drained_(std::move(all_drained)) {}
  void worker_drained() {
    if (remaining_.fetch_sub(1) == 1) all_drained_();
  }

 private:
  std::atomic<std::size_t> remaining_;
  std::function<void()> all_drained_;
};

class Worker {
 public:
  Worker(Shared& shared, std::size_t index, const cache::RedisOptions& redis);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Its own listening socket on `endpoint` (SO_REUSEPORT, so every worker can bind the address).
  error_code listen(const tcp::endpoint& endpoint);
  tcp::endpoint local_endpoint() const;

  // Spawns its coroutines (Redis, subscriber, accept loop, limit leases); run() then runs them.
  void start();
  void run() { ioc_.run(); }
  // Worker 0 runs on the main thread, which keeps the process's name (pgrep, ps).
  void run_in_thread() {
    thread_ = std::thread([this] {
      const auto name = "llmgw-worker-" + std::to_string(app_.worker_index);
      core::name_this_thread(name.c_str());
      run();
    });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // From any thread: stop accepting, drain, then stop this worker's background parts.
  void shutdown(ShutdownCoordinator& coordinator);

  App& app() { return app_; }
  net::io_context& ioc() { return ioc_; }

 private:
  net::awaitable<void> drain(ShutdownCoordinator& coordinator);
  void stop_background();

  // One thread runs it: the scheduler skips waking other threads. Its locks stay (other threads post
  // here); turning the reactor's per-socket lock off too (UNSAFE_IO) measured no gain.
  net::io_context ioc_{1};
  std::shared_ptr<cache::RedisClient> redis_;
  App app_;
  std::shared_ptr<cache::RedisSubscriber> subscriber_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

}  // namespace gw
