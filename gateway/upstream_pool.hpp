#pragma once
// Connections to providers: connect (+TLS with verification and SNI) under one deadline (DNS
// included), reuse through a bounded idle pool keyed by (scheme, host, port), and a cap on
// concurrent connections per host. A pooled connection is handed out again only if it is still
// silent: one that turned readable while idle (unsolicited bytes, or the provider's close) is
// dropped, so no request ever reads bytes meant for an earlier one.
#include "core/config.hpp"
#include "core/result.hpp"
#include "core/upstream_target.hpp"
#include "gateway/deadlines.hpp"
#include "gateway/http.hpp"
#include "gateway/session_list.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

namespace gw {

using TlsStream = net::ssl::stream<tcp::socket&>;

struct HostState {
  std::size_t open = 0;  // connections alive (idle or leased)
  std::deque<std::unique_ptr<struct UpstreamConn>> idle;
};

struct UpstreamConn {
  UpstreamConn(net::any_io_executor ex, Deadlines& deadlines, std::shared_ptr<HostState> h)
      : socket(std::move(ex)), deadline(deadlines, socket), host(std::move(h)) {
    ++host->open;
  }
  ~UpstreamConn() { --host->open; }
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  tcp::socket socket;
  std::optional<TlsStream> tls;  // set for https
  Deadline deadline;
  std::shared_ptr<HostState> host;  // counts this connection while it lives
  bool reused = false;
  Clock::time_point idle_since{};
};

class UpstreamPool {
 public:
  UpstreamPool(const core::Config& cfg, net::ssl::context& tls, Deadlines& deadlines)
      : cfg_(cfg), tls_(tls), deadlines_(deadlines) {}

  // A silent idle pooled connection when there is one, else a new one. While connecting, the
  // socket (and the DNS wait) are published in `session` so a forced shutdown or a departed client
  // can cut them. Errors: upstream_unavailable (DNS, connect, TLS), upstream_timeout (deadline),
  // overloaded (host cap reached).
  net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> acquire(const core::UpstreamTarget& t,
                                                                      SessionEntry& session);
  // Back to the idle pool when there is room; otherwise closed. Only for connections whose
  // response was read completely with nothing else received.
  void release(const core::UpstreamTarget& t, std::unique_ptr<UpstreamConn> c);
  void close_idle();

 private:
  std::shared_ptr<HostState>& host(const std::string& key);
  net::awaitable<core::Result<tcp::resolver::results_type>> resolve(const core::UpstreamTarget& t,
                                                                    Clock::time_point deadline,
                                                                    SessionEntry& session);

  const core::Config& cfg_;
  net::ssl::context& tls_;
  Deadlines& deadlines_;
  std::unordered_map<std::string, std::shared_ptr<HostState>> hosts_;
};

// Non-blocking check of an idle connection: true when nothing arrived and it is not closed.
bool idle_connection_silent(tcp::socket& s) noexcept;

// A TLS context that verifies peers against the system store (+ UPSTREAM_CA_FILE).
core::Result<std::unique_ptr<net::ssl::context>> make_client_tls(const core::Config& cfg);

}  // namespace gw
