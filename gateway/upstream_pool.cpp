#include "gateway/upstream_pool.hpp"

#include "core/log.hpp"
#include "gateway/socket_peek.hpp"
#include "gateway/write_now.hpp"

#include <boost/asio/ssl/host_name_verification.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace gw {
namespace {

using core::errc;

// How long an idle pooled connection is trusted; providers close idle keep-alives after ~60-90 s.
constexpr auto kMaxIdle = std::chrono::seconds(30);

core::Error unavailable() {
  return {errc::upstream_unavailable};
}

core::Error overloaded() {
  return {errc::overloaded, "Too many concurrent upstream requests; retry later."};
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
  return peek(s) == Peek::nothing;
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
  if (!h) h = std::make_shared<HostState>(cfg_.upstream_max_conns_per_host);
  return h;
}

// ---- the per-host FIFO of waiters -------------------------------------------------------------

// A request waiting for a slot of a host at its cap. Lives in the waiting coroutine's frame; linked
// into its host's queue until a slot is handed to it, its deadline passes or it is cancelled.
// Whatever it still holds when destroyed (a queue place, a promised slot) goes back.
struct PoolWaiter {
  PoolWaiter(net::any_io_executor ex, HostState& h) : timer(std::move(ex)), host(h) {}
  ~PoolWaiter() {
    if (linked) host.unlink(*this);
    if (granted) {
      --host.reserved;
      host.slot_freed();  // to the next waiter
    }
  }
  PoolWaiter(const PoolWaiter&) = delete;
  PoolWaiter& operator=(const PoolWaiter&) = delete;

  net::steady_timer timer;  // expires at the end of the wait; cancelled to wake the waiter early
  HostState& host;
  std::unique_ptr<UpstreamConn> conn;  // an idle connection handed over, or
  bool granted = false;                // a freed slot, counted in host.reserved until taken
  bool linked = false;
  PoolWaiter* prev = nullptr;
  PoolWaiter* next = nullptr;
};

void HostState::enqueue(PoolWaiter& w) noexcept {
  w.prev = last;
  w.next = nullptr;
  if (last)
    last->next = &w;
  else
    first = &w;
  last = &w;
  w.linked = true;
  ++waiting;
}

void HostState::unlink(PoolWaiter& w) noexcept {
  if (w.prev)
    w.prev->next = w.next;
  else
    first = w.next;
  if (w.next)
    w.next->prev = w.prev;
  else
    last = w.prev;
  w.prev = w.next = nullptr;
  w.linked = false;
  --waiting;
}

PoolWaiter* HostState::pop_first() noexcept {
  PoolWaiter* w = first;
  if (w) unlink(*w);
  return w;
}

void HostState::slot_freed() noexcept {
  if (!first || full()) return;
  PoolWaiter* w = pop_first();
  w->granted = true;
  ++reserved;  // nobody else may take it before the waiter runs
  w->timer.cancel();
}

UpstreamConn::~UpstreamConn() {
  --host->open;
  host->slot_freed();
}

// ---- acquire / release ------------------------------------------------------------------------

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

net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::acquire(
    const core::UpstreamTarget& t, SessionEntry& session) {
  auto h = host(t.pool_key);  // a copy: the map may rehash while we wait
  const auto now = Clock::now();
  reap_idle(now);
  if (!h->first) {  // (while requests wait, every returned connection goes to them, none is idle)
    while (!h->idle.empty()) {
      auto c = std::move(h->idle.back());  // the most recently used is the most likely still open
      h->idle.pop_back();
      if (now - c->idle_since > kMaxIdle || !idle_connection_silent(c->socket)) continue;  // drop
      c->reused = true;
      co_return std::move(c);
    }
  }

  std::unique_ptr<UpstreamConn> c;
  if (!h->first && !h->full()) {
    auto ex = co_await net::this_coro::executor;
    c = std::make_unique<UpstreamConn>(ex, deadlines_, h);  // takes the slot before DNS
  } else {
    auto waited = co_await wait_for_slot(h, session);
    if (!waited) co_return std::move(waited).error();
    c = std::move(*waited);
    if (c->reused) {
      if (idle_connection_silent(c->socket)) co_return std::move(c);
      // Handed over idle but dead by now: this request keeps the slot and connects anew on it.
      c->tls.reset();
      error_code ignored;
      c->socket.close(ignored);
      c->reused = false;
    }
  }
  co_return co_await connect(t, std::move(c), session);
}

net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::wait_for_slot(
    const std::shared_ptr<HostState>& h, SessionEntry& session) {
  const auto limit = to_steady(cfg_.upstream_queue_timeout);
  if (limit <= Clock::duration::zero() || h->waiting >= std::max<std::size_t>(1, cfg_.max_connections)) {
    ++queue_timeouts_;
    co_return overloaded();
  }
  auto client_left = [&session] {
    return session.client_gone || (session.client && !session.client->is_open());
  };
  if (client_left()) co_return unavailable();  // nobody to wait for (a departed client, a forced close)

  auto ex = co_await net::this_coro::executor;
  PoolWaiter w(ex, *h);
  w.timer.expires_after(limit);
  h->enqueue(w);
  ++queue_waits_;
  // Published like a DNS wait: a departing client or a forced shutdown cancels the timer.
  struct Waiting {
    SessionEntry& s;
    std::size_t& queued;
    Waiting(SessionEntry& se, net::steady_timer& t, std::size_t& q) : s(se), queued(q) {
      s.waiting = &t;
      ++queued;
    }
    ~Waiting() {
      s.waiting = nullptr;
      --queued;
    }
    Waiting(const Waiting&) = delete;
    Waiting& operator=(const Waiting&) = delete;
  };
  std::optional<Waiting> waiting(std::in_place, session, w.timer, queued_);
  auto [ec] = co_await w.timer.async_wait(use_tuple);
  waiting.reset();
  if (w.linked) h->unlink(w);  // not woken by a slot: the deadline passed, or the wait was cancelled

  if (w.conn) {
    if (client_left()) {
      put_back(std::move(w.conn));  // to the next waiter
      co_return unavailable();
    }
    w.conn->reused = true;
    co_return std::move(w.conn);
  }
  if (w.granted) {
    if (client_left()) co_return unavailable();  // ~PoolWaiter passes the slot on
    w.granted = false;
    --h->reserved;
    co_return std::make_unique<UpstreamConn>(ex, deadlines_, h);
  }
  if (ec == net::error::operation_aborted || client_left()) co_return unavailable();  // cancelled
  ++queue_timeouts_;
  co_return overloaded();
}

net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::connect(
    const core::UpstreamTarget& t, std::unique_ptr<UpstreamConn> c, SessionEntry& session) {
  const auto deadline = Clock::now() + to_steady(cfg_.upstream_connect_timeout);
  auto endpoints = co_await resolve(t, deadline, session);
  if (!endpoints) co_return endpoints.error();

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
  if (cec)
    co_return core::Error{c->deadline.fired() || c->deadline.expired() ? errc::upstream_timeout
                                                                       : errc::upstream_unavailable};
  error_code ignored;
  c->socket.set_option(tcp::no_delay(true), ignored);
  make_non_blocking(c->socket);

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

void UpstreamPool::release(const core::UpstreamTarget& /*t*/, std::unique_ptr<UpstreamConn> c) {
  const auto now = Clock::now();
  c->idle_since = now;
  c->deadline.expires_never();
  put_back(std::move(c));
  reap_idle(now);
}

// The first waiter of the host takes it as it is; else the idle pool, when there is room.
void UpstreamPool::put_back(std::unique_ptr<UpstreamConn> c) {
  HostState& h = *c->host;  // kept alive by hosts_
  if (PoolWaiter* w = h.pop_first()) {
    w->conn = std::move(c);
    w->timer.cancel();
    return;
  }
  if (h.idle.size() >= cfg_.upstream_max_idle_per_host) return;  // closes c
  h.idle.push_back(std::move(c));
}

// Idle connections older than kMaxIdle are never handed out; they are also closed here, at most
// once a second while the worker sees traffic, so a host no longer used does not keep descriptors.
void UpstreamPool::reap_idle(Clock::time_point now) {
  if (now - reaped_at_ < std::chrono::seconds(1)) return;
  reaped_at_ = now;
  for (auto& [key, h] : hosts_)
    while (!h->idle.empty() && now - h->idle.front()->idle_since > kMaxIdle) h->idle.pop_front();
}

void UpstreamPool::close_idle() {
  for (auto& [key, h] : hosts_) h->idle.clear();
}

std::size_t UpstreamPool::open_connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, h] : hosts_) n += h->open;
  return n;
}

std::size_t UpstreamPool::idle_connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, h] : hosts_) n += h->idle.size();
  return n;
}

}  // namespace gw
