#pragma once
// Connections to providers: connect (+TLS with verification and SNI) under one deadline (DNS
// included), reuse through a bounded idle pool keyed by (scheme, host, port), and an optional cap
// on concurrent connections per host. A pooled connection is handed out again only if it is still
// silent: one that turned readable while idle (unsolicited bytes, or the provider's close) is
// dropped, so no request ever reads bytes meant for an earlier one.
//
// One pool per worker (one io_context thread, no locks), so UPSTREAM_MAX_CONNS_PER_HOST and
// UPSTREAM_MAX_IDLE_PER_HOST apply per worker: with N workers a host may see N times the cap.
// Without a cap (0, the default) a host's connections are bounded by the client connections
// (MAX_CONNECTIONS, itself lowered to fit the fd limit): a request holds at most one at a time.
//
// At the cap, a request waits in its host's FIFO queue (at most MAX_CONNECTIONS waiters per host)
// for UPSTREAM_QUEUE_TIMEOUT, then fails with `overloaded` (503, Retry-After: 1). A slot that
// frees goes to the first waiter and to no one else: a connection returned idle is handed to it
// directly, a closed connection's slot is reserved for it (HostState::reserved) until it runs, so
// a request arriving meanwhile cannot overtake the queue. A slot is held from before DNS until the
// connection is destroyed, so connects in progress count. The wait is published in the session
// (SessionEntry::waiting) like a DNS wait: a departing client or a forced shutdown ends it.
#include "core/config.hpp"
#include "core/result.hpp"
#include "core/upstream_target.hpp"
#include "gateway/deadlines.hpp"
#include "gateway/http.hpp"
#include "gateway/session_list.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

namespace gw {

using TlsStream = net::ssl::stream<tcp::socket&>;

struct UpstreamConn;
struct PoolWaiter;  // a request waiting for a slot (upstream_pool.cpp)

struct HostState {
  explicit HostState(std::size_t max_open) noexcept : cap(max_open) {}
  HostState(const HostState&) = delete;
  HostState& operator=(const HostState&) = delete;

  const std::size_t cap;     // UPSTREAM_MAX_CONNS_PER_HOST of this worker; 0 = no cap
  std::size_t open = 0;      // connections alive (idle, leased or connecting)
  std::size_t reserved = 0;  // freed slots promised to woken waiters that have not run yet
  std::deque<std::unique_ptr<UpstreamConn>> idle;  // oldest first
  PoolWaiter* first = nullptr;  // the FIFO of waiters; non-empty only while `idle` is empty
  PoolWaiter* last = nullptr;
  std::size_t waiting = 0;

  bool full() const noexcept { return cap != 0 && open + reserved >= cap; }
  // A connection is gone (or a promised slot was given back): the first waiter gets the slot.
  void slot_freed() noexcept;
  void enqueue(PoolWaiter& w) noexcept;
  void unlink(PoolWaiter& w) noexcept;
  PoolWaiter* pop_first() noexcept;
};

struct UpstreamConn {
  UpstreamConn(net::any_io_executor ex, Deadlines& deadlines, std::shared_ptr<HostState> h)
      : socket(std::move(ex)), deadline(deadlines, socket), host(std::move(h)) {
    ++host->open;
  }
  ~UpstreamConn();  // frees the host slot (which may wake a waiter)
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
  ~UpstreamPool() { close_idle(); }
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // A silent idle pooled connection when there is one, else a new one; at the host's cap, first a
  // wait in its queue. While waiting or connecting, the timer or socket (and the DNS wait) are
  // published in `session` so a forced shutdown or a departed client can cut them. Errors:
  // upstream_unavailable (DNS, connect, TLS; or the wait was cancelled), upstream_timeout
  // (deadline), overloaded (host cap reached and no slot within UPSTREAM_QUEUE_TIMEOUT).
  net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> acquire(const core::UpstreamTarget& t,
                                                                      SessionEntry& session);
  // To the first waiter of its host, else back to the idle pool when there is room; otherwise
  // closed. Only for connections whose response was read completely with nothing else received.
  void release(const core::UpstreamTarget& t, std::unique_ptr<UpstreamConn> c);
  void close_idle();

  // For /metrics (this worker's pool).
  std::size_t queued() const noexcept { return queued_; }                    // requests waiting now
  std::uint64_t queue_waits() const noexcept { return queue_waits_; }        // requests that had to wait
  std::uint64_t queue_timeouts() const noexcept { return queue_timeouts_; }  // refused: host at its cap
  std::size_t open_connections() const noexcept;
  std::size_t idle_connections() const noexcept;

 private:
  std::shared_ptr<HostState>& host(const std::string& key);
  net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> wait_for_slot(
      const std::shared_ptr<HostState>& h, SessionEntry& session);
  net::awaitable<core::Result<std::unique_ptr<UpstreamConn>>> connect(const core::UpstreamTarget& t,
                                                                      std::unique_ptr<UpstreamConn> c,
                                                                      SessionEntry& session);
  net::awaitable<core::Result<tcp::resolver::results_type>> resolve(const core::UpstreamTarget& t,
                                                                    Clock::time_point deadline,
                                                                    SessionEntry& session);
  void put_back(std::unique_ptr<UpstreamConn> c);
  void reap_idle(Clock::time_point now);

  const core::Config& cfg_;
  net::ssl::context& tls_;
  Deadlines& deadlines_;
  std::unordered_map<std::string, std::shared_ptr<HostState>> hosts_;
  Clock::time_point reaped_at_{};
  std::size_t queued_ = 0;
  std::uint64_t queue_waits_ = 0;
  std::uint64_t queue_timeouts_ = 0;
};

// Non-blocking check of an idle connection: true when nothing arrived and it is not closed.
bool idle_connection_silent(tcp::socket& s) noexcept;

// A TLS context that verifies peers against the system store (+ UPSTREAM_CA_FILE).
core::Result<std::unique_ptr<net::ssl::context>> make_client_tls(const core::Config& cfg);

}  // namespace gw
