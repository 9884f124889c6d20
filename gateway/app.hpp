#pragma once
// What a handler can reach. `Shared` is one per process (read-only, or synchronised inside);
// `App` is one per worker: its io_context, caches, pools and sessions, used from that worker's
// thread only, so the hot path takes no locks.
#include "cache/redis_client.hpp"
#include "cache/stores.hpp"
#include "core/config.hpp"
#include "core/routing.hpp"
#include "gateway/body_budget.hpp"
#include "gateway/deadlines.hpp"
#include "gateway/http.hpp"
#include "gateway/limits.hpp"
#include "gateway/local_cache.hpp"
#include "gateway/metrics.hpp"
#include "gateway/session_list.hpp"
#include "gateway/upstream_pool.hpp"
#include "storage/db.hpp"
#include "storage/key_repo.hpp"
#include "storage/model_repo.hpp"
#include "storage/provider_repo.hpp"
#include "storage/route_repo.hpp"
#include "core/keys.hpp"

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace gw {

struct Shared {
  Shared(const core::Config& c, storage::Db& d, net::ssl::context& t, std::size_t max_conns)
      : cfg(c), db(d), tls(t), body_budget(c.max_buffered_body_bytes), max_connections(max_conns) {}

  const core::Config& cfg;
  storage::Db& db;
  net::ssl::context& tls;
  BodyBudget body_budget;
  std::atomic<std::size_t> connections{0};
  // Where /v1 requests of authenticated keys are recorded (the batch log writer); may be empty.
  std::function<void(core::RequestLog&&)> request_log;
  // Extra /metrics samples from process-wide parts (log writer, database pool); may be empty.
  std::function<void(std::string&)> render_metrics;
  const std::size_t max_connections;  // MAX_CONNECTIONS, lowered to what the fd limit allows
  const Clock::time_point started = Clock::now();
  const std::string instance_id = core::generate_uuid_v4();  // this process, among the replicas
  // Every worker's App, by index; filled before any worker runs, then read-only. Another worker's
  // App is touched only on its own thread.
  std::vector<struct App*> workers;
  // SIGTERM arrived: /health/ready says 503 and responses close their connections, while the
  // listeners stay open for SHUTDOWN_DELAY_SECONDS; then every worker drains.
  std::atomic<bool> stopping{false};
  SecretsFallback secrets_fallback;
};

struct App {
  App(Shared& s, net::io_context& io, std::shared_ptr<cache::RedisClient> r)
      : shared(s),
        cfg(s.cfg),
        ioc(io),
        db(s.db),
        redis(r),
        stores(std::move(r), s.cfg.redis_prefix),
        deadlines(io.get_executor()),
        limits(redis, s.cfg, io.get_executor(), s.instance_id),
        upstream(s.cfg, s.tls, deadlines),
        health(core::CooldownPolicy{.failures = s.cfg.route_cooldown_failures,
                                    .window = to_steady(s.cfg.route_cooldown_window),
                                    .cooldown = to_steady(s.cfg.route_cooldown)}) {
    local.secrets_fallback = &s.secrets_fallback;
  }

  Shared& shared;
  const core::Config& cfg;
  net::io_context& ioc;
  std::size_t worker_index = 0;  // worker 0 also rebuilds Redis on every (re)connect
  // False once this worker's loop is about to end: other workers stop asking it for samples.
  std::atomic<bool> serving{true};
  storage::Db& db;
  storage::ProviderRepo providers{db};
  storage::ModelRepo models{db};
  storage::KeyRepo keys{db};
  storage::RouteRepo routes{db};
  std::shared_ptr<cache::RedisClient> redis;
  cache::Stores stores;
  LocalCaches local;
  Deadlines deadlines;
  LimitState limits;
  UpstreamPool upstream;
  core::RouteHealth health;  // failover cooldowns, as this worker sees them
  core::RoundRobin rr;
  Metrics metrics;
  std::size_t in_flight = 0;  // proxied requests waiting for or streaming an upstream answer
  SessionList sessions;
  bool draining = false;
  // No more keep-alive: draining, or the process is about to (SHUTDOWN_DELAY_SECONDS).
  bool closing() const noexcept { return draining || shared.stopping.load(std::memory_order_relaxed); }

  // /health/ready: PostgreSQL's answer is reused for a second (Redis is asked every time).
  Clock::time_point db_checked_at{};
  bool db_ok = false;

  // Rebuilds Redis from PostgreSQL (start-up, every Redis reconnect) and marks it warm. Errors are
  // logged, not fatal; a failed rebuild is retried until it succeeds.
  net::awaitable<void> warm_cache();
  // After an admin change of providers/models: rewrite the route hash, tell every replica.
  net::awaitable<void> refresh_routes();
  // After an admin change of a key: update its Redis record, tell every replica.
  net::awaitable<void> key_changed(std::string hash);
  // After an admin change of a key's limits: its budget counters in Redis follow (reset: zeroed;
  // budget removed: dropped; budget added: seeded from PostgreSQL).
  net::awaitable<core::Status> budget_changed(const core::UserKey& key, bool reset);
  // A cache write failed, so Redis may now disagree with PostgreSQL: it is no longer trusted as
  // authoritative (warm marker dropped) and rebuilt as soon as possible.
  void cache_write_failed(std::string_view what);
  // Applies `change` to this worker's local caches now and to every other worker's on its own
  // thread: an admin change reaches every worker even while Redis (and its pub/sub) is down.
  void change_local_caches(std::function<void(LocalCaches&)> change);

 private:
  bool rewarm_pending_ = false;
  net::awaitable<core::Status> seed_budgets();
  net::awaitable<void> rewarm_until_done();
};

}  // namespace gw
