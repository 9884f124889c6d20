#include "core/routing.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace std::chrono_literals;
using core::RoutingClock;

namespace {

core::ModelRoutes model(core::Strategy s, std::vector<std::pair<int, int>> priority_weight) {
  core::ModelRoutes m{"m", "gpt", s, {}};
  int i = 0;
  for (auto [p, w] : priority_weight) {
    core::RouteTarget t;
    t.route_id = "r" + std::to_string(i++);
    t.priority = p;
    t.weight = w;
    m.routes.push_back(t);
  }
  return m;
}

const auto t0 = RoutingClock::time_point{} + 1h;

}  // namespace

TEST_CASE("routing: priority order keeps the given (priority, creation) order; unusable routes are skipped") {
  auto m = model(core::Strategy::priority, {{0, 1}, {0, 1}, {5, 1}});
  core::RouteHealth health;
  core::RoundRobin rr;
  CHECK(core::plan_attempts(m, health, rr, t0, nullptr) == std::vector<std::size_t>{0, 1, 2});
  auto not_r1 = [](const core::RouteTarget& t) { return t.route_id != "r1"; };
  CHECK(core::plan_attempts(m, health, rr, t0, not_r1) == std::vector<std::size_t>{0, 2});
}

TEST_CASE("routing: a route cools down after N failures in the window, and comes back after the cooldown") {
  auto m = model(core::Strategy::priority, {{0, 1}, {1, 1}});
  core::RouteHealth health({.failures = 3, .window = 30s, .cooldown = 10s});
  core::RoundRobin rr;
  health.record_failure("r0", t0);
  health.record_failure("r0", t0 + 1s);
  CHECK(core::plan_attempts(m, health, rr, t0 + 2s, nullptr) == std::vector<std::size_t>{0, 1});
  health.record_failure("r0", t0 + 2s);
  CHECK(health.cooling("r0", t0 + 3s));
  CHECK(core::plan_attempts(m, health, rr, t0 + 3s, nullptr) == std::vector<std::size_t>{1});
  CHECK(core::plan_attempts(m, health, rr, t0 + 12s, nullptr) == std::vector<std::size_t>{0, 1});
  // Failures spread wider than the window do not add up.
  health.record_failure("r1", t0 + 20s);
  health.record_failure("r1", t0 + 51s);
  health.record_failure("r1", t0 + 82s);
  CHECK_FALSE(health.cooling("r1", t0 + 83s));
  // A success forgets the past.
  health.record_failure("r1", t0 + 90s);
  health.record_failure("r1", t0 + 91s);
  health.record_success("r1");
  health.record_failure("r1", t0 + 92s);
  CHECK_FALSE(health.cooling("r1", t0 + 93s));
}

TEST_CASE("routing: Retry-After cools a route at once, capped") {
  auto m = model(core::Strategy::priority, {{0, 1}, {1, 1}});
  core::RouteHealth health({.failures = 3, .window = 30s, .cooldown = 10s, .max_retry_after = 60s});
  core::RoundRobin rr;
  health.record_failure("r0", t0, 20s);
  CHECK(core::plan_attempts(m, health, rr, t0 + 19s, nullptr) == std::vector<std::size_t>{1});
  CHECK(core::plan_attempts(m, health, rr, t0 + 21s, nullptr) == std::vector<std::size_t>{0, 1});
  health.record_failure("r0", t0 + 30s, 1h);
  CHECK(health.cooling("r0", t0 + 89s));
  CHECK_FALSE(health.cooling("r0", t0 + 91s));
}

TEST_CASE("routing: when every route is cooling, the least recently failed is tried first") {
  auto m = model(core::Strategy::priority, {{0, 1}, {1, 1}, {2, 1}});
  core::RouteHealth health({.failures = 1, .window = 30s, .cooldown = 60s});
  core::RoundRobin rr;
  health.record_failure("r1", t0);
  health.record_failure("r2", t0 + 1s);
  health.record_failure("r0", t0 + 2s);
  CHECK(core::plan_attempts(m, health, rr, t0 + 3s, nullptr) == std::vector<std::size_t>{1, 2, 0});
}

TEST_CASE("routing: smooth weighted round robin spreads by weight, evenly, with fallbacks after the pick") {
  auto m = model(core::Strategy::round_robin, {{0, 5}, {0, 1}, {0, 1}});
  core::RouteHealth health;
  core::RoundRobin rr;
  std::map<std::size_t, int> first;
  std::vector<std::size_t> sequence;
  for (int i = 0; i < 70; ++i) {
    const auto order = core::plan_attempts(m, health, rr, t0, nullptr);
    REQUIRE(order.size() == 3);
    ++first[order[0]];
    sequence.push_back(order[0]);
  }
  CHECK(first[0] == 50);
  CHECK(first[1] == 10);
  CHECK(first[2] == 10);
  // Smooth: nginx's a a b a c a a per cycle, so at most 4 in a row across two cycles (a plain
  // weighted round robin would send 5 in a row).
  int run = 0, longest = 0;
  for (auto i : sequence) {
    run = i == 0 ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  CHECK(longest <= 4);
}

TEST_CASE("routing: retryable statuses, Retry-After parsing, allowlists") {
  for (unsigned s : {429u, 500u, 502u, 503u, 504u, 520u, 529u, 599u}) CHECK(core::retryable_status(s));
  for (unsigned s : {200u, 400u, 401u, 403u, 404u, 408u, 409u, 413u, 422u}) CHECK_FALSE(core::retryable_status(s));

  CHECK(core::parse_retry_after("3", "") == std::optional<RoutingClock::duration>(3s));
  CHECK(core::parse_retry_after("3", "1500") == std::optional<RoutingClock::duration>(1500ms));
  CHECK(core::parse_retry_after("0.5", "") == std::optional<RoutingClock::duration>(500ms));
  CHECK_FALSE(core::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", ""));
  CHECK_FALSE(core::parse_retry_after("", ""));
  CHECK_FALSE(core::parse_retry_after("-1", ""));

  const std::vector<std::string> none;
  CHECK(core::model_allowed(none, "anything"));
  const std::vector<std::string> list{"gpt-4o", "claude-*"};
  CHECK(core::model_allowed(list, "gpt-4o"));
  CHECK_FALSE(core::model_allowed(list, "gpt-4o-mini"));
  CHECK(core::model_allowed(list, "claude-3-5-sonnet"));
  CHECK(core::model_allowed(list, "claude-"));
  CHECK_FALSE(core::model_allowed(list, "claud"));
  const std::vector<std::string> all{"*"};
  CHECK(core::model_allowed(all, "x"));
}

TEST_CASE("routing: strategies by name") {
  CHECK(core::parse_strategy("priority") == core::Strategy::priority);
  CHECK(core::parse_strategy("round_robin") == core::Strategy::round_robin);
  CHECK_FALSE(core::parse_strategy("random"));
  CHECK(core::to_string(core::Strategy::round_robin) == "round_robin");
}
