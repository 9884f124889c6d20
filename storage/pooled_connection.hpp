#pragma once
// One PostgreSQL connection owned by one pool thread (or by migrate()). It connects lazily, forgets
// itself when the server goes away so the next job reconnects, and turns libpqxx exceptions into
// core::Error values: nothing above the pool sees an exception for an expected failure.
#include "core/result.hpp"

#include <pqxx/connection>

#include <chrono>
#include <memory>
#include <string>

namespace storage::detail {

// `url` (a postgresql:// URI or a key=value conninfo) with connect_timeout added unless present, so
// an unreachable server costs a bounded wait instead of the kernel's TCP timeout.
std::string with_connect_timeout(const std::string& url, int seconds);

class PooledConnection {
 public:
  PooledConnection(std::string conninfo, std::chrono::milliseconds statement_timeout);

  // The live connection, connecting (and setting statement_timeout) first when there is none.
  // Throws pqxx::broken_connection when the server cannot be reached.
  pqxx::connection& get();

  // Only call from inside a catch block. Classifies the in-flight exception:
  //   broken connection (or its SQLSTATE 08xxx / 57Pxx) -> db_unavailable, connection dropped
  //   statement timeout (57014)                         -> db_unavailable
  //   unique_violation                                  -> conflict
  //   foreign_key_violation                             -> invalid_request
  //   anything else                                     -> internal, logged as one JSON line
  core::Error on_exception() noexcept;

 private:
  std::string conninfo_;
  std::chrono::milliseconds statement_timeout_;
  std::unique_ptr<pqxx::connection> conn_;
};

// One JSON line on stderr; `detail` must never hold SQL parameters.
void log_db_event(const char* level, const char* msg, std::string_view detail) noexcept;

}  // namespace storage::detail
