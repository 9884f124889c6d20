#include "storage/pooled_connection.hpp"

#include "core/log.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/except>

#include <cstdio>
#include <string_view>
#include <utility>

namespace storage::detail {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// SQLSTATE classes that mean "this session is gone": 08 connection exception, 57P01..57P03
// admin shutdown / crash shutdown / cannot connect now.
bool session_lost(std::string_view sqlstate) {
  return starts_with(sqlstate, "08") || starts_with(sqlstate, "57P");
}

// libpq puts DETAIL / HINT lines after the first one, and DETAIL can echo row values (e.g. "Key
// (name)=(...)", "Failing row contains (...)"): keep only the primary message.
std::string_view first_line(const char* what) {
  std::string_view s(what);
  if (auto nl = s.find('\n'); nl != std::string_view::npos) s = s.substr(0, nl);
  return s;
}

}  // namespace

std::string with_connect_timeout(const std::string& url, int seconds) {
  if (url.find("connect_timeout=") != std::string::npos) return url;
  const std::string value = "connect_timeout=" + std::to_string(seconds);
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + value;
  }
  return url.empty() ? value : url + " " + value;
}

void log_db_event(const char* level, const char* msg, std::string_view detail) noexcept {
  try {
    const std::string_view l(level);
    const core::LogLevel lvl = l == "error"  ? core::LogLevel::error
                               : l == "warn" ? core::LogLevel::warn
                                             : core::LogLevel::info;
    core::log::write(lvl, msg, {{"detail", detail}});
  } catch (...) {
    // Logging must never turn a handled DB error into a crash.
  }
}

PooledConnection::PooledConnection(std::string conninfo, std::chrono::milliseconds statement_timeout)
    : conninfo_(std::move(conninfo)), statement_timeout_(statement_timeout) {}

pqxx::connection& PooledConnection::get() {
  if (conn_ && conn_->is_open()) return *conn_;
  conn_.reset();
  auto conn = std::make_unique<pqxx::connection>(conninfo_);
  // set_variable (not a raw SET) so libpqxx re-applies it should it ever reactivate the session.
  conn->set_variable("statement_timeout", std::to_string(statement_timeout_.count()));
  conn_ = std::move(conn);
  return *conn_;
}

core::Error PooledConnection::on_exception() noexcept {
  const bool had_session = conn_ != nullptr;
  auto lost = [&](std::string_view detail) {
    conn_.reset();
    // A failed connect is the caller's 503; only log when an established session broke.
    if (had_session) log_db_event("warn", "db connection lost", detail);
    return core::Error{core::errc::db_unavailable};
  };
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return lost(first_line(e.what()));
  } catch (const pqxx::unique_violation&) {
    return core::Error{core::errc::conflict};
  } catch (const pqxx::foreign_key_violation&) {
    return core::Error{core::errc::invalid_request};
  } catch (const pqxx::sql_error& e) {
    if (session_lost(e.sqlstate()) || (conn_ && !conn_->is_open())) return lost(first_line(e.what()));
    if (e.sqlstate() == "57014") {  // query_canceled: statement_timeout fired
      log_db_event("warn", "db statement timeout", first_line(e.what()));
      return core::Error{core::errc::db_unavailable};
    }
    log_db_event("error", "db error", first_line(e.what()));
    return core::Error{core::errc::internal};
  } catch (const std::exception& e) {
    // e.g. pqxx::in_doubt_error when the link died during COMMIT.
    if (conn_ && !conn_->is_open()) return lost(first_line(e.what()));
    log_db_event("error", "db error", first_line(e.what()));
    return core::Error{core::errc::internal};
  } catch (...) {
    log_db_event("error", "db error", "unknown exception");
    return core::Error{core::errc::internal};
  }
}

}  // namespace storage::detail
