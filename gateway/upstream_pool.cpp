#include "gateway/upstream_pool.hpp"

#include "core/log.hpp"

#include <boost/asio/ssl/host_name_verification.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>

namespace gw {
namespace {

using core::errc;

// How long an idle pooled connection is trusted; providers close idle keep-alives after ~60-90 s.
constexpr auto kMaxIdle = std::chrono::seconds(30);

core::Error unavailable() {
  return {errc::upstream_unavailable};
}

// The outcome of one resolve, shared with its completion handler: the handler may run after the
// caller stopped waiting (deadline, shutdown), so it owns the resolver and touches nothing else.
struct Resolve {
  explicit Resolve(net::any_io_executor ex) : resolver(ex), timer(ex) {}
  tcp::resolver resolver;
  net::steady_timer timer;
  bool done = false;
  error_code ec;
  tcp::resolver::results_type results;
};

}  // namespace

bool idle_connection_silent(tcp::socket& s) noexcept {
  if (!s.is_open()) return false;
  char probe;
  const auto n = ::recv(s.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

core::Result<std::unique_ptr<net::ssl::context>> make_client_tls(const core::Config& cfg) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  error_code ec;
  ctx->set_default_verify_paths(ec);
  if (!cfg.upstream_ca_file.empty()) ctx->load_verify_file(cfg.upstream_ca_file, ec);
  if (ec) return core::Error{errc::internal, "cannot load CA certificates: " + ec.message()};
  ctx->set_verify_mode(net::ssl::verify_peer);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // Idle TLS connections give their read/write buffers back (~34 KiB each).
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

std::shared_ptr<HostState>& UpstreamPool::host(const std::string& key) {
  auto& h = hosts_[key];
  if (!h) h = std::make_shared<HostState>();
  return h;
}

net::awaitable<core::Result<tcp::resolver::results_type>> UpstreamPool::resolve(const core::UpstreamTarget& t,
                                                                                 Clock::time_point deadline,
                                                                                 SessionEntry& session) {
  auto st = std::make_shared<Resolve>(co_await net::this_coro::executor);
  auto on_resolved = [st](error_code ec, tcp::resolver::results_type results) {
    st->done = true;
    st->ec = ec;
    st->results = std::move(results);
    st->timer.cancel();
  };
  st->resolver.async_resolve(t.host, t.port, std::move(on_resolved));
  st->timer.expires_at(deadline);
  session.waiting = &st->timer;
  co_await st->timer.async_wait(use_tuple);
  session.waiting = nullptr;
  if (!st->done) {
    st->resolver.cancel();  // getaddrinfo may still run; its result lands in `st` and is dropped
    co_return core::Error{Clock::now() >= deadline ? errc::upstream_timeout : errc::upstream_unavailable};
  }
  if (st->ec) co_return unavailable();
  co_return std::move(st->results);
}

net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::acquire(const core::UpstreamTarget& t,
                                                                                   SessionEntry& session) {
  auto h = host(t.pool_key);  // a copy: the map may rehash while we wait
  while (!h->idle.empty()) {
    auto c = std::move(h->idle.back());  // the most recently used is the most likely still open
    h->idle.pop_back();
    if (Clock::now() - c->idle_since > kMaxIdle || !idle_connection_silent(c->socket)) continue;  // drop
    c->reused = true;
    co_return std::move(c);
  }
  if (h->open >= cfg_.upstream_max_conns_per_host)
    co_return core::Error{errc::overloaded, "Too many concurrent upstream requests; retry later."};

  auto ex = co_await net::this_coro::executor;
  const auto deadline = Clock::now() + to_steady(cfg_.upstream_connect_timeout);
  auto endpoints = co_await resolve(t, deadline, session);
  if (!endpoints) co_return endpoints.error();

  auto c = std::make_unique<UpstreamConn>(ex, deadlines_, h);
  c->deadline.expires_at(deadline);
  session.upstream = &c->socket;
  struct Unpublish {
    SessionEntry& s;
    ~Unpublish() { s.upstream = nullptr; }
  } unpublish{session};

  error_code cec = net::error::host_not_found;
  for (const auto& entry : *endpoints) {
    if (c->deadline.expired() || session.client_gone) break;
    auto [ec] = co_await c->socket.async_connect(entry.endpoint(), use_tuple);
    if (!(cec = ec)) break;
    error_code ignored;
    c->socket.close(ignored);
  }
  if (cec) co_return core::Error{c->deadline.fired() || c->deadline.expired() ? errc::upstream_timeout
                                                                              : errc::upstream_unavailable};
  error_code ignored;
  c->socket.set_option(tcp::no_delay(true), ignored);

  if (t.tls) {
    auto& tls = c->tls.emplace(c->socket, tls_);
    // SNI, and a certificate that must name the host we meant.
    if (!SSL_set_tlsext_host_name(tls.native_handle(), t.host.c_str())) co_return unavailable();
    tls.set_verify_callback(net::ssl::host_name_verification(t.host));
    auto [hec] = co_await tls.async_handshake(net::ssl::stream_base::client, use_tuple);
    if (hec) {
      if (c->deadline.fired()) co_return core::Error{errc::upstream_timeout};
      core::log::warn("upstream tls handshake failed", {{"upstream", t.pool_key}, {"error", hec.message()}});
      co_return unavailable();
    }
  }
  c->deadline.expires_never();
  co_return std::move(c);
}

void UpstreamPool::release(const core::UpstreamTarget& t, std::unique_ptr<UpstreamConn> c) {
  auto& h = host(t.pool_key);
  if (h->idle.size() >= cfg_.upstream_max_idle_per_host) return;  // closes c
  c->idle_since = Clock::now();
  c->deadline.expires_never();
  h->idle.push_back(std::move(c));
}

void UpstreamPool::close_idle() {
  for (auto& [key, h] : hosts_) h->idle.clear();
}

}  // namespace gw
