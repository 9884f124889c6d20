#include "core/log.hpp"
#include "gateway/deadline.hpp"
#include "gateway/handlers.hpp"

#include <boost/json.hpp>

namespace gw {
namespace {

constexpr auto kProbeDeadline = std::chrono::milliseconds(1000);
// Readiness probes arrive every few seconds from every kubelet and load balancer: PostgreSQL's
// answer is reused this long, so probes never add a query each. Redis is asked every time (it is
// on the hot path: readiness must turn 503 the moment it dies).
constexpr auto kDbProbeReuse = std::chrono::seconds(1);
constexpr std::string_view kVersion = "0.1.0";

struct Probe {
  bool db = false;
  bool redis = false;
};

net::awaitable<bool> probe_db(App& app) {
  const auto now = Clock::now();
  if (now - app.db_checked_at < kDbProbeReuse) co_return app.db_ok;
  auto r = co_await with_deadline(app.db.ping(), kProbeDeadline);
  app.db_ok = r && r->has_value();
  app.db_checked_at = Clock::now();
  co_return app.db_ok;
}

net::awaitable<Probe> probe(App& app) {
  auto redis = co_await with_deadline(app.stores.ping(), kProbeDeadline);
  const bool db = co_await probe_db(app);
  co_return Probe{db, redis && redis->has_value()};
}

std::string_view up(bool ok) {
  return ok ? "ok" : "unavailable";
}

// Where rate limits are decided: "shared" (Redis, exact across replicas) or "local" (each worker
// alone while Redis is unreachable; see README).
std::string_view limits_mode(const App& app) {
  return app.limits.fallback || !app.redis->connected() ? "local" : "shared";
}

}  // namespace

net::awaitable<Response> health_live(App&, Exchange&) {
  co_return json_response(200, R"({"status":"ok"})");
}

net::awaitable<Response> health_ready(App& app, Exchange&) {
  const Probe p = co_await probe(app);
  const bool ready = p.db && p.redis && !app.closing();
  boost::json::object body{{"status", ready ? "ready" : "unavailable"},
                           {"db", up(p.db)},
                           {"redis", up(p.redis)},
                           {"limits", limits_mode(app)}};
  if (app.closing()) body["draining"] = true;
  co_return json_response(ready ? 200 : 503, boost::json::serialize(body));
}

net::awaitable<Response> health_info(App& app, Exchange&) {
  const Probe p = co_await probe(app);
  const auto uptime = std::chrono::duration<double>(Clock::now() - app.shared.started).count();
  boost::json::object body{{"status", p.db && p.redis ? "ok" : "degraded"},
                           {"version", kVersion},
                           {"uptime_seconds", uptime},
                           {"db", up(p.db)},
                           {"redis", up(p.redis)},
                           {"limits", limits_mode(app)},
                           {"workers", app.shared.workers.size()},
                           {"connections", app.shared.connections.load(std::memory_order_relaxed)},
                           {"buffered_body_bytes", app.shared.body_budget.in_use()}};
  co_return json_response(200, boost::json::serialize(body));
}

}  // namespace gw
