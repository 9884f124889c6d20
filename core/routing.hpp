#pragma once
// Which upstream routes to try for one request, and in what order. Pure: the per-worker state
// (route health, round-robin weights) is a value passed in, time is a parameter.
//
// - priority: healthy routes by ascending priority, ties in creation order;
// - round_robin: a smooth weighted round-robin pick (nginx's algorithm: even spread, no bursts)
//   first, then the other healthy routes in priority order as fallbacks;
// - a route that failed `failures` times within `window` (or was told to back off by a
//   Retry-After) cools down: it is skipped while healthy routes remain; when every route is
//   cooling, they are tried least-recently-failed first rather than refusing the request.
#include "core/bounded_cache.hpp"
#include "core/domain.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace core {

using RoutingClock = std::chrono::steady_clock;

struct CooldownPolicy {
  int failures = 3;                                     // within `window` -> cool down
  RoutingClock::duration window = std::chrono::seconds(30);
  RoutingClock::duration cooldown = std::chrono::seconds(30);
  RoutingClock::duration max_retry_after = std::chrono::minutes(5);  // longer hints are capped
};

// Health of routes as seen by one worker, keyed by route id. Bounded: forgotten routes age out.
class RouteHealth {
 public:
  explicit RouteHealth(CooldownPolicy policy = {});

  // `retry_after`: the upstream asked us to back off this long (429 / 503 / 529 Retry-After).
  void record_failure(std::string_view route_id, RoutingClock::time_point now,
                      std::optional<RoutingClock::duration> retry_after = std::nullopt);
  void record_success(std::string_view route_id);
  bool cooling(std::string_view route_id, RoutingClock::time_point now);
  // When the route last failed (epoch when never, or forgotten by `now`).
  RoutingClock::time_point last_failure(std::string_view route_id, RoutingClock::time_point now);
  const CooldownPolicy& policy() const noexcept { return policy_; }

 private:
  struct State {
    std::vector<RoutingClock::time_point> recent;  // failures within the window, at most `failures`
    RoutingClock::time_point cooling_until{};
    RoutingClock::time_point last_failure{};
  };
  CooldownPolicy policy_;
  BoundedCache<State> states_;
};

// Smooth weighted round-robin state, per worker, keyed by route id.
class RoundRobin {
 public:
  RoundRobin() : current_(100000, std::chrono::hours(24)) {}
  // Picks one index among `eligible` (indexes into routes) by weight; eligible must not be empty.
  std::size_t pick(const std::vector<RouteTarget>& routes, std::span<const std::size_t> eligible);

 private:
  BoundedCache<long long> current_;
};

// The attempt order for one request: indexes into m.routes. `usable(route)` filters routes that
// cannot serve this request at all (wrong API, provider over its limit): they are never tried.
std::vector<std::size_t> plan_attempts(const ModelRoutes& m, RouteHealth& health, RoundRobin& rr,
                                       RoutingClock::time_point now,
                                       const std::function<bool(const RouteTarget&)>& usable);

// Statuses worth another route: 429 and every 5xx (529 included). Other 4xx are the client's.
bool retryable_status(unsigned status) noexcept;

// Retry-After (delta-seconds) or retry-after-ms, as a duration; nullopt when absent or a date.
std::optional<RoutingClock::duration> parse_retry_after(std::string_view retry_after,
                                                        std::string_view retry_after_ms) noexcept;

// Per-key model access: an empty list allows every model; an entry ending in '*' is a prefix.
bool model_allowed(std::span<const std::string> allowed, std::string_view model) noexcept;

}  // namespace core
