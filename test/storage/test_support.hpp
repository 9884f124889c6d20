#pragma once
// Shared by the storage tests: the per-run PostgreSQL server and a way to drive coroutines.
#include "temp_postgres.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <string>

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

}  // namespace test
