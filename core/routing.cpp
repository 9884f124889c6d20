#include "core/routing.hpp"

#include <algorithm>
#include <charconv>

namespace core {

std::string_view to_string(Strategy s) noexcept {
  return s == Strategy::round_robin ? "round_robin" : "priority";
}

std::optional<Strategy> parse_strategy(std::string_view s) noexcept {
  if (s == "priority") return Strategy::priority;
  if (s == "round_robin") return Strategy::round_robin;
  return std::nullopt;
}

RouteHealth::RouteHealth(CooldownPolicy policy)
    : policy_(policy),
      states_(10000, std::max({policy.window, policy.cooldown, policy.max_retry_after}) + std::chrono::seconds(1)) {}

void RouteHealth::record_failure(std::string_view route_id, RoutingClock::time_point now,
                                 std::optional<RoutingClock::duration> retry_after) {
  State s;
  if (const State* old = states_.find(route_id, now)) s = *old;
  s.last_failure = now;
  std::erase_if(s.recent, [&](auto t) { return now - t >= policy_.window; });
  s.recent.push_back(now);
  if (static_cast<int>(s.recent.size()) >= policy_.failures) {
    s.cooling_until = std::max(s.cooling_until, now + policy_.cooldown);
    s.recent.clear();
  }
  if (retry_after) s.cooling_until = std::max(s.cooling_until, now + std::min(*retry_after, policy_.max_retry_after));
  states_.put(std::string(route_id), std::move(s), now);
}

void RouteHealth::record_success(std::string_view route_id) {
  states_.erase(route_id);
}

bool RouteHealth::cooling(std::string_view route_id, RoutingClock::time_point now) {
  const State* s = states_.find(route_id, now);
  return s && now < s->cooling_until;
}

RoutingClock::time_point RouteHealth::last_failure(std::string_view route_id, RoutingClock::time_point now) {
  const State* s = states_.find(route_id, now);
  return s ? s->last_failure : RoutingClock::time_point{};
}

std::size_t RoundRobin::pick(const std::vector<RouteTarget>& routes, std::span<const std::size_t> eligible) {
  long long total = 0;
  std::size_t best = eligible.front();
  long long best_current = 0;
  bool first = true;
  for (std::size_t i : eligible) {
    const auto& r = routes[i];
    const long long weight = std::max(r.weight, 1);
    long long current = weight;
    if (const long long* c = current_.find(r.route_id)) current += *c;
    current_.put(r.route_id, current);
    total += weight;
    if (first || current > best_current) {
      best = i;
      best_current = current;
      first = false;
    }
  }
  current_.put(routes[best].route_id, best_current - total);
  return best;
}

std::vector<std::size_t> plan_attempts(const ModelRoutes& m, RouteHealth& health, RoundRobin& rr,
                                       RoutingClock::time_point now,
                                       const std::function<bool(const RouteTarget&)>& usable) {
  std::vector<std::size_t> healthy, cooling;
  for (std::size_t i = 0; i < m.routes.size(); ++i) {
    if (usable && !usable(m.routes[i])) continue;
    (health.cooling(m.routes[i].route_id, now) ? cooling : healthy).push_back(i);
  }
  if (healthy.empty()) {
    std::stable_sort(cooling.begin(), cooling.end(), [&](std::size_t a, std::size_t b) {
      return health.last_failure(m.routes[a].route_id, now) < health.last_failure(m.routes[b].route_id, now);
    });
    return cooling;
  }
  if (m.strategy == Strategy::round_robin && healthy.size() > 1) {
    const std::size_t chosen = rr.pick(m.routes, healthy);
    std::erase(healthy, chosen);
    healthy.insert(healthy.begin(), chosen);
  }
  return healthy;
}

bool retryable_status(unsigned status) noexcept {
  return status == 429 || (status >= 500 && status <= 599);
}

std::optional<RoutingClock::duration> parse_retry_after(std::string_view retry_after,
                                                        std::string_view retry_after_ms) noexcept {
  auto number = [](std::string_view s) -> std::optional<double> {
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || !(v >= 0) || v > 1e9) return std::nullopt;
    return v;
  };
  if (auto ms = number(retry_after_ms))
    return std::chrono::duration_cast<RoutingClock::duration>(std::chrono::duration<double, std::milli>(*ms));
  if (auto s = number(retry_after))
    return std::chrono::duration_cast<RoutingClock::duration>(std::chrono::duration<double>(*s));
  return std::nullopt;
}

bool model_allowed(std::span<const std::string> allowed, std::string_view model) noexcept {
  if (allowed.empty()) return true;
  for (const auto& a : allowed) {
    if (!a.empty() && a.back() == '*') {
      if (model.substr(0, a.size() - 1) == std::string_view(a).substr(0, a.size() - 1)) return true;
    } else if (a == model) {
      return true;
    }
  }
  return false;
}

}  // namespace core
