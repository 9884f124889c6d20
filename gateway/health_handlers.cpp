#include "core/log.hpp"
#include "gateway/deadline.hpp"
#include "gateway/handlers.hpp"
#include "gateway/responses.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>

namespace gw {
namespace {

constexpr auto kProbeDeadline = std::chrono::milliseconds(1000);
constexpr std::string_view kVersion = "0.1.0";

struct Probe {
  bool db = false;
  bool redis = false;
};

net::awaitable<Probe> probe(App& app) {
  using namespace net::experimental::awaitable_operators;
  // Both at once, each with its own deadline: readiness must answer quickly when one hangs.
  auto [db, redis] = co_await (with_deadline(app.db.ping(), kProbeDeadline) &&
                               with_deadline(app.stores.ping(), kProbeDeadline));
  co_return Probe{db && db->has_value(), redis && redis->has_value()};
}

std::string_view up(bool ok) {
  return ok ? "ok" : "unavailable";
}

}  // namespace

net::awaitable<Response> health_live(App&, Exchange& ex) {
  co_return json_response(ex.req, http::status::ok, R"({"status":"ok"})");
}

net::awaitable<Response> health_ready(App& app, Exchange& ex) {
  const Probe p = co_await probe(app);
  const bool ready = p.db && p.redis && !app.draining;
  boost::json::object body{
      {"status", ready ? "ready" : "unavailable"}, {"db", up(p.db)}, {"redis", up(p.redis)}};
  if (app.draining) body["draining"] = true;
  co_return json_response(ex.req, ready ? http::status::ok : http::status::service_unavailable,
                          boost::json::serialize(body));
}

net::awaitable<Response> health_info(App& app, Exchange& ex) {
  const Probe p = co_await probe(app);
  const auto uptime = std::chrono::duration<double>(Clock::now() - app.started).count();
  boost::json::object body{{"status", p.db && p.redis ? "ok" : "degraded"},
                           {"version", kVersion},
                           {"uptime_seconds", uptime},
                           {"db", up(p.db)},
                           {"redis", up(p.redis)}};
  co_return json_response(ex.req, http::status::ok, boost::json::serialize(body));
}

}  // namespace gw
