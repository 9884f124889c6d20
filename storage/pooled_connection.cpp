#include "storage/pooled_connection.hpp"

#include "core/log.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/except>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

// Whether `conninfo` sets `key`, in either form: the key at the start or after a blank, '?' or '&',
// then optional blanks and '='. ("keepalives" is not set by "keepalives_idle=10".)
bool has_param(std::string_view conninfo, std::string_view key) {
  for (auto pos = conninfo.find(key); pos != std::string_view::npos; pos = conninfo.find(key, pos + 1)) {
    const bool at_start =
        pos == 0 || std::string_view(" \t\n?&").find(conninfo[pos - 1]) != std::string_view::npos;
    const auto next = conninfo.find_first_not_of(" \t", pos + key.size());
    if (at_start && next != std::string_view::npos && conninfo[next] == '=') return true;
  }
  return false;
}

}  // namespace

std::string with_default_params(const std::string& url, const ConninfoParams& params) {
  const bool uri = starts_with(url, "postgresql://") || starts_with(url, "postgres://");
  std::string out = url;
  for (const auto& [key, value] : params) {
    if (has_param(url, key)) continue;
    if (uri) {
      if (out.find('?') == std::string::npos) {
        out += '?';
      } else if (out.back() != '?' && out.back() != '&') {
        out += '&';
      }
    } else if (!out.empty()) {
      out += ' ';
    }
    out += key + "=" + value;
  }
  return out;
}

std::string pool_conninfo(const std::string& url, int connect_timeout_s) {
  return with_default_params(url, {{"connect_timeout", std::to_string(connect_timeout_s)},
                                   {"keepalives", "1"},
                                   {"keepalives_idle", "10"},
                                   {"keepalives_interval", "5"},
                                   {"keepalives_count", "3"}});
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

PooledConnection::~PooledConnection() {
  drop();
}

pqxx::connection& PooledConnection::get() {
  fresh_ = false;
  if (conn_ && conn_->is_open()) {
    if (!peer_hung_up()) return *conn_;
    log_db_event("warn", "db connection lost", "closed by the server while idle");
  }
  drop();
  fresh_ = true;
  if (interrupted()) throw pqxx::broken_connection("the connection pool is stopping");
  auto conn = std::make_unique<pqxx::connection>(conninfo_);
  // Reconnecting is this class's job (and the pool's retry policy): libpqxx reconnecting on its own
  // would also swap the socket that interrupt() must be able to reach.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  adopt(std::move(conn));
  // The server-side twin of the caller's deadline: ends a query nobody waits for any more, so the
  // connection is free again (unless the server itself hangs; see Db::stop).
  conn_->set_variable("statement_timeout", std::to_string(statement_timeout_.count()));
  return *conn_;
}

// A server that restarted, or ended the session, has already closed its end of the idle socket:
// notice that before running a job (a poll() that does not wait) instead of failing the job.
bool PooledConnection::peer_hung_up() const noexcept {
  pollfd p{conn_->sock(), POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void PooledConnection::adopt(std::unique_ptr<pqxx::connection> conn) {
  const int dup = ::fcntl(conn->sock(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) throw pqxx::broken_connection("cannot duplicate the connection's socket");
  std::lock_guard lock(mu_);
  socket_dup_ = dup;
  conn_ = std::move(conn);
  // interrupt() came while we were connecting: this session must not start a query either.
  if (interrupted_) ::shutdown(socket_dup_, SHUT_RDWR);
}

void PooledConnection::drop() noexcept {
  {
    std::lock_guard lock(mu_);
    if (socket_dup_ >= 0) ::close(socket_dup_);
    socket_dup_ = -1;
  }
  conn_.reset();
}

bool PooledConnection::interrupted() noexcept {
  std::lock_guard lock(mu_);
  return interrupted_;
}

void PooledConnection::interrupt() noexcept {
  std::lock_guard lock(mu_);
  interrupted_ = true;
  if (socket_dup_ >= 0) ::shutdown(socket_dup_, SHUT_RDWR);
}

PooledConnection::Failure PooledConnection::classify_exception() noexcept {
  const bool had_session = conn_ != nullptr;
  auto lost = [&](std::string_view detail) {
    drop();
    // A failed connect is the caller's 503; only log when an established session broke.
    if (had_session) log_db_event("warn", "db connection lost", detail);
    return Failure{core::Error{core::errc::db_unavailable}, true};
  };
  auto error = [](core::errc code) { return Failure{core::Error{code}, false}; };
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return lost(first_line(e.what()));
  } catch (const pqxx::unique_violation&) {
    return error(core::errc::conflict);
  } catch (const pqxx::foreign_key_violation&) {
    return error(core::errc::invalid_request);
  } catch (const pqxx::sql_error& e) {
    if (session_lost(e.sqlstate()) || (conn_ && !conn_->is_open())) return lost(first_line(e.what()));
    if (e.sqlstate() == "57014") {  // query_canceled: statement_timeout fired
      log_db_event("warn", "db statement timeout", first_line(e.what()));
      return error(core::errc::db_unavailable);
    }
    log_db_event("error", "db error", first_line(e.what()));
    return error(core::errc::internal);
  } catch (const std::exception& e) {
    // e.g. pqxx::in_doubt_error when the link died during COMMIT.
    if (conn_ && !conn_->is_open()) return lost(first_line(e.what()));
    log_db_event("error", "db error", first_line(e.what()));
    return error(core::errc::internal);
  } catch (...) {
    log_db_event("error", "db error", "unknown exception");
    return error(core::errc::internal);
  }
}

}  // namespace storage::detail
