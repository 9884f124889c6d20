#pragma once
// One PostgreSQL connection owned by one pool thread (or by migrate()). It connects lazily, forgets
// itself when the server goes away so the next job reconnects, and turns libpqxx exceptions into
// core::Error values: nothing above the pool sees an exception for an expected failure.
#include "core/result.hpp"

#include <pqxx/connection>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storage::detail {

using ConninfoParams = std::vector<std::pair<std::string, std::string>>;

// `url` (a postgresql:// URI or a key=value conninfo) with each of `params` appended unless the
// url already sets that key: "?k=v&k=v" for the URI form, " k=v" for the key=value form.
std::string with_default_params(const std::string& url, const ConninfoParams& params);

// What the pool connects with: `url` plus, unless already set,
//  - connect_timeout, so an unreachable server costs a bounded wait instead of the kernel's;
//  - TCP keepalives (idle 10 s, then 3 probes 5 s apart), so an idle session to a host that
//    vanished (network black hole, dead VM) is noticed in ~25 s instead of ~2 h.
std::string pool_conninfo(const std::string& url, int connect_timeout_s);

class PooledConnection {
 public:
  PooledConnection(std::string conninfo, std::chrono::milliseconds statement_timeout);
  ~PooledConnection();
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;

  // The live connection, connecting (and setting statement_timeout) first when there is none, or
  // when the server has already hung up on the idle session (it restarted, or ended the session).
  // Throws pqxx::broken_connection when the server cannot be reached, or after interrupt().
  pqxx::connection& get();

  // Whether the last get() had to open a new session (or failed trying) rather than reuse one. A
  // lost session is worth a retry only when it was an old one: a new one failing says the server
  // is down.
  bool fresh() const noexcept { return fresh_; }

  struct Failure {
    core::Error error;
    bool session_lost = false;  // the connection broke; it has been dropped
  };

  // Only call from inside a catch block. Classifies the in-flight exception:
  //   broken connection (or its SQLSTATE 08xxx / 57Pxx) -> db_unavailable, connection dropped
  //   statement timeout (57014)                         -> db_unavailable
  //   unique_violation                                  -> conflict
  //   foreign_key_violation                             -> invalid_request
  //   anything else                                     -> internal, logged as one JSON line
  Failure classify_exception() noexcept;
  core::Error on_exception() noexcept { return classify_exception().error; }

  // Closes the session, if any: the next get() opens a new one. For an owner that no longer trusts
  // the session after repeated failures.
  void reset() noexcept { drop(); }

  // From any thread: makes the query running on this connection, and every later get(), fail at
  // once by shutting the socket down under the owner's feet. For stopping a pool whose server
  // hangs; the connection is useless afterwards.
  void interrupt() noexcept;

 private:
  bool peer_hung_up() const noexcept;
  void adopt(std::unique_ptr<pqxx::connection> conn);
  void drop() noexcept;
  bool interrupted() noexcept;

  std::string conninfo_;
  std::chrono::milliseconds statement_timeout_;
  std::unique_ptr<pqxx::connection> conn_;  // only the owning thread touches it
  bool fresh_ = false;

  // interrupt() never uses libpq's descriptor: libpq closes it by itself when the link fails, and
  // another thread may get the same number from open() a moment later. It shuts down a duplicate
  // we own instead (same socket), which is closed only under mu_.
  std::mutex mu_;
  int socket_dup_ = -1;
  bool interrupted_ = false;
};

// One JSON line on stderr; `detail` must never hold SQL parameters.
void log_db_event(const char* level, const char* msg, std::string_view detail) noexcept;

}  // namespace storage::detail
