#include "core/limits.hpp"

#include <catch2/catch.hpp>

using namespace core;
using namespace std::chrono_literals;

namespace {

LimitClock::time_point at_ms(std::int64_t ms) {
  return LimitClock::time_point(std::chrono::duration_cast<LimitClock::duration>(Millis(ms)));
}

constexpr std::int64_t kDay = 86'400'000;

}  // namespace

TEST_CASE("limits: OpenAI's reset durations") {
  CHECK(openai_duration(Millis(0)) == "0ms");
  CHECK(openai_duration(Millis(20)) == "20ms");
  CHECK(openai_duration(Millis(1000)) == "1s");
  CHECK(openai_duration(Millis(1500)) == "1.5s");
  CHECK(openai_duration(Millis(17250)) == "17.25s");
  CHECK(openai_duration(Millis(360000)) == "6m0s");
  CHECK(openai_duration(Millis(3723000)) == "1h2m3s");
  CHECK(openai_duration(Millis(-5)) == "0ms");
}

TEST_CASE("limits: rate headers use OpenAI's names, the token trio only with a token limit") {
  RateHeaders h{.limit_requests = 50, .remaining_requests = 49, .reset_requests = Millis(1200)};
  std::vector<std::pair<std::string, std::string>> out;
  h.append_to(out);
  REQUIRE(out.size() == 3);
  CHECK(out[0] == std::pair<std::string, std::string>{"x-ratelimit-limit-requests", "50"});
  CHECK(out[1] == std::pair<std::string, std::string>{"x-ratelimit-remaining-requests", "49"});
  CHECK(out[2] == std::pair<std::string, std::string>{"x-ratelimit-reset-requests", "1.2s"});
  h.limit_tokens = 1000;
  h.remaining_tokens = -3;  // an estimate overran: never negative on the wire
  h.reset_tokens = Millis(0);
  out.clear();
  h.append_to(out);
  REQUIRE(out.size() == 6);
  CHECK(out[4].second == "0");
}

TEST_CASE("limits: token estimate is the text plus the output bound the request sets") {
  CHECK(estimate_tokens(R"({"model":"m"})") == 4 + 256);
  CHECK(estimate_tokens(R"({"model":"m","max_tokens":10})") == 8 + 10);
  CHECK(estimate_tokens(R"({"max_completion_tokens":7})") == 7 + 7);
  CHECK(estimate_tokens(R"({"max_output_tokens":5,"x":1})") == 8 + 5);
  CHECK(estimate_tokens(R"({"max_tokens":"lots"})", 100) == 6 + 100);  // not a number: the default
  CHECK(estimate_micro_usd(1000, Pricing{.input = 2.0, .output = 8.0}) == 8000);
  CHECK(estimate_micro_usd(1000, Pricing{}) == 0);
  CHECK(to_micro_usd(0.000001) == 1);
}

TEST_CASE("local limiter: rpm lets exactly the limit through in a sliding minute") {
  LocalLimiter l;
  const KeyLimits lim{.rpm = 5};
  for (int i = 0; i < 5; ++i) CHECK(l.admit("k", lim, 0, 0, at_ms(1000 + i)).admitted);
  auto no = l.admit("k", lim, 0, 0, at_ms(30'000));
  CHECK_FALSE(no.admitted);
  CHECK(no.reason == LimitReason::rpm);
  CHECK(no.retry_after == Millis(61'000 - 30'000));
  CHECK_FALSE(l.admit("k", lim, 0, 0, at_ms(60'999)).admitted);
  auto yes = l.admit("k", lim, 0, 0, at_ms(61'000));  // the first one left the window
  CHECK(yes.admitted);
  CHECK(yes.headers.limit_requests == 5);
  CHECK(yes.headers.remaining_requests == 0);
  CHECK(l.admit("other", lim, 0, 0, at_ms(61'001)).admitted);  // per key
}

TEST_CASE("local limiter: rpd resets at 00:00 UTC") {
  LocalLimiter l;
  const KeyLimits lim{.rpd = 2};
  CHECK(l.admit("k", lim, 0, 0, at_ms(kDay - 10'000)).admitted);
  CHECK(l.admit("k", lim, 0, 0, at_ms(kDay - 9'000)).admitted);
  auto no = l.admit("k", lim, 0, 0, at_ms(kDay - 1'000));
  CHECK(no.reason == LimitReason::rpd);
  CHECK(no.retry_after == Millis(1'000));
  CHECK(l.admit("k", lim, 0, 0, at_ms(kDay)).admitted);
}

TEST_CASE("local limiter: parallel slots free when requests finish") {
  LocalLimiter l;
  const KeyLimits lim{.max_parallel = 2};
  CHECK(l.admit("k", lim, 0, 0, at_ms(0)).admitted);
  CHECK(l.admit("k", lim, 0, 0, at_ms(0)).admitted);
  CHECK(l.admit("k", lim, 0, 0, at_ms(0)).reason == LimitReason::parallel);
  l.finish("k", 0, 0, at_ms(1));
  CHECK(l.admit("k", lim, 0, 0, at_ms(2)).admitted);
}

TEST_CASE("local limiter: tpm counts finished tokens over the last minute") {
  LocalLimiter l;
  const KeyLimits lim{.tpm = 100};
  CHECK(l.admit("k", lim, 10, 0, at_ms(0)).admitted);
  l.finish("k", 100, 0, at_ms(500));
  auto no = l.admit("k", lim, 10, 0, at_ms(1'000));
  CHECK(no.reason == LimitReason::tpm);
  CHECK(l.admit("k", lim, 10, 0, at_ms(61'000)).admitted);
}

TEST_CASE("local limiter: budgets are admitted while below, never refill") {
  LocalLimiter l;
  const KeyLimits lim{.token_budget = 30};
  CHECK(l.admit("k", lim, 18, 0, at_ms(0)).admitted);
  l.finish("k", 18, 0, at_ms(1));
  CHECK(l.admit("k", lim, 18, 0, at_ms(2)).admitted);
  l.finish("k", 18, 0, at_ms(3));
  auto no = l.admit("k", lim, 18, 0, at_ms(4));
  CHECK(no.reason == LimitReason::token_budget);
  CHECK_FALSE(no.retry_after);
  CHECK(is_quota(no.reason));

  LocalLimiter usd;
  const KeyLimits dollars{.budget_usd = 0.01};
  usd.remember_used("k", {0, 9'000});  // Redis said 0.009 used
  CHECK(usd.admit("k", dollars, 0, 0, at_ms(0)).admitted);
  usd.finish("k", 0, 1'000, at_ms(1));
  CHECK(usd.admit("k", dollars, 0, 0, at_ms(2)).reason == LimitReason::budget_usd);
}

TEST_CASE("local limiter: limits are shared out over the limiters that stand in for Redis") {
  LocalLimiter l;
  const KeyLimits lim{.rpm = 10, .token_budget = 1000};
  l.remember_used("k", {400, 0});
  // Three limiters: ceil(10 / 3) = 4 requests here; 600 tokens left -> 200 each.
  for (int i = 0; i < 4; ++i) CHECK(l.admit("k", lim, 0, 0, at_ms(i), 3).admitted);
  CHECK(l.admit("k", lim, 0, 0, at_ms(5), 3).reason == LimitReason::rpm);
  LocalLimiter b;
  b.remember_used("k", {400, 0});
  CHECK(b.admit("k", lim, 0, 0, at_ms(0), 3).admitted);
  b.finish("k", 199, 0, at_ms(1));
  CHECK(b.admit("k", lim, 0, 0, at_ms(2), 3).admitted);
  b.finish("k", 1, 0, at_ms(3));
  CHECK(b.admit("k", lim, 0, 0, at_ms(4), 3).reason == LimitReason::token_budget);
}

TEST_CASE("local limiter: provider rpm and rpd") {
  LocalLimiter l;
  const ProviderLimits lim{.rpd = 3};
  for (int i = 0; i < 3; ++i) CHECK_FALSE(l.admit_provider("p", lim, at_ms(i)));
  auto wait = l.admit_provider("p", lim, at_ms(10));
  REQUIRE(wait);
  CHECK(*wait == Millis(kDay - 10));
  CHECK_FALSE(l.admit_provider("q", lim, at_ms(10)));
  CHECK_FALSE(l.admit("p", KeyLimits{.rpd = 1}, 0, 0, at_ms(10)).reason == LimitReason::rpd);  // keys apart
}
