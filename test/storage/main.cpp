// Catch2 runner that owns the throw-away PostgreSQL server for the whole run, so it is stopped
// however the tests end.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstdio>
#include <exception>
#include <memory>

namespace {
std::unique_ptr<test::TempPostgres> g_postgres;
}

test::TempPostgres& test::postgres() {
  return *g_postgres;
}

int main(int argc, char* argv[]) {
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  try {
    g_postgres = std::make_unique<test::TempPostgres>();
    g_postgres->create_database("llmgw");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot start PostgreSQL for the storage tests: %s\n", e.what());
    g_postgres.reset();
    return 1;
  }
  const int failed = session.run();
  g_postgres.reset();
  return failed;
}

// libpqxx 6.4 leaks one PGresult when a query hits a connection the server has closed (the
// outage test does that on purpose); keep LeakSanitizer builds about our own code.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libpqxx\n";
}
