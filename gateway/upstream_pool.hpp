#pragma once
// Connections to providers: connect (+TLS with verification and SNI) under a deadline, reuse via
// a bounded idle pool keyed by (scheme, host, port), and a cap on concurrent connections per host.
#include "core/config.hpp"
#include "core/result.hpp"
#include "core/upstream_target.hpp"
#include "gateway/http.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <deque>
#include <memory>
#include <unordered_map>
#include <variant>

namespace gw {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct HostState {
  std::size_t open = 0;  // connections alive (idle or leased)
  std::deque<std::unique_ptr<struct UpstreamConn>> idle;
};

struct UpstreamConn {
  std::variant<PlainStream, TlsStream> stream;
  std::shared_ptr<HostState> host;  // counts this connection while it lives
  bool reused = false;
  Clock::time_point idle_since{};

  UpstreamConn(std::variant<PlainStream, TlsStream> s, std::shared_ptr<HostState> h)
      : stream(std::move(s)), host(std::move(h)) {
    ++host->open;
  }
  ~UpstreamConn() { --host->open; }
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  tcp::socket& socket() {
    return std::visit([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(s).socket(); }, stream);
  }
};

class UpstreamPool {
 public:
  UpstreamPool(const core::Config& cfg, net::ssl::context& tls) : cfg_(cfg), tls_(tls) {}

  // An idle pooled connection when allowed and available, else a new one.
  // Errors: upstream_unavailable (DNS, connect, TLS, deadline), overloaded (host cap reached).
  net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> acquire(const core::UpstreamTarget& t,
                                                                      bool allow_reuse);
  // Back to the idle pool when there is room; otherwise closed.
  void release(const core::UpstreamTarget& t, std::unique_ptr<UpstreamConn> c);
  void close_idle();

 private:
  std::shared_ptr<HostState>& host(const std::string& key);

  const core::Config& cfg_;
  net::ssl::context& tls_;
  std::unordered_map<std::string, std::shared_ptr<HostState>> hosts_;
};

// A TLS context that verifies peers against the system store (+ UPSTREAM_CA_FILE).
core::Result<std::unique_ptr<net::ssl::context>> make_client_tls(const core::Config& cfg);

}  // namespace gw
