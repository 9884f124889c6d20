#include "gateway/upstream_pool.hpp"

#include "core/log.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include <openssl/ssl.h>

namespace gw {
namespace {

using core::errc;

// How long an idle pooled connection is trusted; providers close idle keep-alives after ~60-90 s.
constexpr auto kMaxIdle = std::chrono::seconds(30);

core::Error unavailable() {
  return {errc::upstream_unavailable};
}

}  // namespace

core::Result<std::unique_ptr<net::ssl::context>> make_client_tls(const core::Config& cfg) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  beast::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (!cfg.upstream_ca_file.empty()) ctx->load_verify_file(cfg.upstream_ca_file, ec);
  if (ec) return core::Error{errc::internal, "cannot load CA certificates: " + ec.message()};
  ctx->set_verify_mode(net::ssl::verify_peer);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  return ctx;
}

std::shared_ptr<HostState>& UpstreamPool::host(const std::string& key) {
  auto& h = hosts_[key];
  if (!h) h = std::make_shared<HostState>();
  return h;
}

net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::acquire(
    const core::UpstreamTarget& t, bool allow_reuse) {
  auto& h = host(t.pool_key);
  while (allow_reuse && !h->idle.empty()) {
    auto c = std::move(h->idle.back());
    h->idle.pop_back();
    if (Clock::now() - c->idle_since > kMaxIdle || !c->socket().is_open()) continue;  // stale: drop
    c->reused = true;
    co_return std::move(c);
  }
  if (h->open >= cfg_.upstream_max_conns_per_host)
    co_return core::Error{errc::overloaded, "Too many concurrent upstream requests; retry later."};

  auto ex = co_await net::this_coro::executor;
  const auto deadline = Clock::now() + to_steady(cfg_.upstream_connect_timeout);

  // The resolver has no timeout of its own: a timer cancels it.
  tcp::resolver resolver(ex);
  net::steady_timer resolve_timer(ex, deadline);
  resolve_timer.async_wait([&resolver](beast::error_code ec) {
    if (!ec) resolver.cancel();
  });
  auto [rec, endpoints] = co_await resolver.async_resolve(t.host, t.port, use_tuple);
  resolve_timer.cancel();
  if (rec) co_return unavailable();

  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_at(deadline);
  auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, use_tuple);
  if (cec) co_return unavailable();
  beast::error_code ec;
  tcp_stream.socket().set_option(tcp::no_delay(true), ec);

  if (!t.tls) {
    tcp_stream.expires_never();
    co_return std::make_unique<UpstreamConn>(std::move(tcp_stream), h);
  }

  TlsStream tls(std::move(tcp_stream), tls_);
  // SNI, and a certificate that must name the host we meant.
  if (!SSL_set_tlsext_host_name(tls.native_handle(), t.host.c_str())) co_return unavailable();
  tls.set_verify_callback(net::ssl::host_name_verification(t.host));
  auto [hec] = co_await tls.async_handshake(net::ssl::stream_base::client, use_tuple);
  if (hec) {
    core::log::warn("upstream tls handshake failed", {{"upstream", t.pool_key}, {"error", hec.message()}});
    co_return unavailable();
  }
  beast::get_lowest_layer(tls).expires_never();
  co_return std::make_unique<UpstreamConn>(std::move(tls), h);
}

void UpstreamPool::release(const core::UpstreamTarget& t, std::unique_ptr<UpstreamConn> c) {
  auto& h = host(t.pool_key);
  if (h->idle.size() >= cfg_.upstream_max_idle_per_host) return;  // closes c
  c->idle_since = Clock::now();
  h->idle.push_back(std::move(c));
}

void UpstreamPool::close_idle() {
  for (auto& [key, h] : hosts_) h->idle.clear();
}

}  // namespace gw
