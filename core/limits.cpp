#include "core/limits.hpp"

#include "core/json_scan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace core {
namespace {

constexpr std::int64_t kMinuteMs = 60'000;
constexpr std::int64_t kDayMs = 86'400'000;

std::int64_t ms_of(LimitClock::time_point t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

}  // namespace

std::string_view to_string(LimitReason r) noexcept {
  switch (r) {
    case LimitReason::rpm:
      return "rpm";
    case LimitReason::rpd:
      return "rpd";
    case LimitReason::tpm:
      return "tpm";
    case LimitReason::parallel:
      return "max_parallel";
    case LimitReason::token_budget:
      return "token_budget";
    case LimitReason::budget_usd:
      return "budget_usd";
    case LimitReason::provider:
      return "provider";
    case LimitReason::none:
      break;
  }
  return "none";
}

bool is_quota(LimitReason r) noexcept {
  return r == LimitReason::token_budget || r == LimitReason::budget_usd;
}

std::string openai_duration(Millis d) {
  const std::int64_t ms = std::max<std::int64_t>(0, d.count());
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < kMinuteMs) {
    if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
    std::string s = fmt::format("{:.3f}", static_cast<double>(ms) / 1000.0);
    while (s.back() == '0') s.pop_back();
    return s + "s";
  }
  const std::int64_t secs = ms / 1000, h = secs / 3600, m = secs % 3600 / 60, sec = secs % 60;
  return h > 0 ? fmt::format("{}h{}m{}s", h, m, sec) : fmt::format("{}m{}s", m, sec);
}

void RateHeaders::append_to(std::vector<std::pair<std::string, std::string>>& h) const {
  if (limit_requests) {
    h.emplace_back("x-ratelimit-limit-requests", std::to_string(*limit_requests));
    h.emplace_back("x-ratelimit-remaining-requests",
                   std::to_string(std::max<std::int64_t>(0, remaining_requests.value_or(0))));
    h.emplace_back("x-ratelimit-reset-requests", openai_duration(reset_requests.value_or(Millis(0))));
  }
  if (limit_tokens) {
    h.emplace_back("x-ratelimit-limit-tokens", std::to_string(*limit_tokens));
    h.emplace_back("x-ratelimit-remaining-tokens",
                   std::to_string(std::max<std::int64_t>(0, remaining_tokens.value_or(0))));
    h.emplace_back("x-ratelimit-reset-tokens", openai_duration(reset_tokens.value_or(Millis(0))));
  }
  if (budget_tokens_left)
    h.emplace_back("x-llm-budget-remaining-tokens",
                   std::to_string(std::max<std::int64_t>(0, *budget_tokens_left)));
  if (budget_micro_usd_left) {
    const auto m = std::max<std::int64_t>(0, *budget_micro_usd_left);
    h.emplace_back("x-llm-budget-remaining-usd", fmt::format("{}.{:06}", m / 1'000'000, m % 1'000'000));
  }
}

std::int64_t estimate_tokens(std::string_view body, std::int64_t default_output) noexcept {
  std::int64_t output = default_output;
  // The first of these that is a positive integer; the body is read once for all three.
  static constexpr std::string_view kKeys[] = {"max_tokens", "max_completion_tokens", "max_output_tokens"};
  Range found[std::size(kKeys)];
  locate_members(body, kKeys, found);
  for (const auto& r : found) {
    if (!r.found()) continue;
    std::int64_t v = 0;
    const auto text = body.substr(r.begin, r.end - r.begin);
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc{} && p == text.data() + text.size() && v > 0) {
      output = v;
      break;
    }
  }
  return static_cast<std::int64_t>(body.size() + 3) / 4 + output;
}

std::int64_t estimate_micro_usd(std::int64_t tokens, const Pricing& p) noexcept {
  const double price = std::max(p.input.value_or(0.0), p.output.value_or(0.0));  // USD per million
  return static_cast<std::int64_t>(static_cast<double>(tokens) * price + 0.5);   // tokens * USD/1e6 * 1e6
}

LocalLimiter::State& LocalLimiter::state(const std::string& id) {
  if (const State* s = states_.find(id)) return const_cast<State&>(*s);
  states_.put(id, State{});
  return const_cast<State&>(*states_.find(id));
}

void LocalLimiter::prune(State& s, std::int64_t now) {
  while (!s.minute.empty() && s.minute.front() <= now - kMinuteMs) s.minute.pop_front();
  while (!s.tokens.empty() && s.tokens.front().first <= now / 1000 - 60) s.tokens.pop_front();
  if (s.day != now / kDayMs) {
    s.day = now / kDayMs;
    s.day_count = 0;
  }
}

void LocalLimiter::remember_used(const std::string& key_id, Used used) {
  State& s = state("k:" + key_id);
  s.used = used;
  s.local = {};
}

namespace {

// This limiter's part of a rate limit.
std::optional<std::int64_t> part(std::optional<std::int64_t> limit, std::int64_t share) {
  if (!limit || share <= 1) return limit;
  return std::max<std::int64_t>(1, (*limit + share - 1) / share);
}

}  // namespace

Admission LocalLimiter::admit(const std::string& key_id, const KeyLimits& full, std::int64_t est_tokens,
                              std::int64_t est_micro_usd, LimitClock::time_point now_tp, std::int64_t share) {
  share = std::max<std::int64_t>(1, share);
  State& s = state("k:" + key_id);
  const std::int64_t now = ms_of(now_tp);
  prune(s, now);
  KeyLimits l = full;
  l.rpm = part(full.rpm, share);
  l.rpd = part(full.rpd, share);
  l.tpm = part(full.tpm, share);
  l.max_parallel = part(full.max_parallel, share);
  std::int64_t minute_tokens = 0;
  for (const auto& [sec, n] : s.tokens) minute_tokens += n;

  Admission a;
  auto deny = [&](LimitReason r, std::optional<Millis> retry) {
    a.reason = r;
    a.retry_after = retry;
    return a;
  };
  // Budgets: this limiter may spend its share of what was left when Redis last reported.
  const auto spent = [&](std::int64_t used, std::int64_t local, std::int64_t budget) {
    return used + local * share >= budget;
  };
  if (l.rpm && static_cast<std::int64_t>(s.minute.size()) >= *l.rpm)
    return deny(LimitReason::rpm, Millis(s.minute.empty() ? 1000 : s.minute.front() + kMinuteMs - now));
  if (l.rpd && s.day_count >= *l.rpd) return deny(LimitReason::rpd, Millis((s.day + 1) * kDayMs - now));
  if (l.tpm && minute_tokens >= *l.tpm)
    return deny(LimitReason::tpm,
                Millis(s.tokens.empty() ? 1000 : (s.tokens.front().first + 60) * 1000 - now));
  if (l.max_parallel && s.in_flight >= *l.max_parallel) return deny(LimitReason::parallel, Millis(1000));
  if (l.token_budget && spent(s.used.tokens, s.local.tokens, *l.token_budget))
    return deny(LimitReason::token_budget, std::nullopt);
  if (l.budget_usd && spent(s.used.micro_usd, s.local.micro_usd, to_micro_usd(*l.budget_usd)))
    return deny(LimitReason::budget_usd, std::nullopt);

  s.minute.push_back(now);
  ++s.day_count;
  ++s.in_flight;
  a.admitted = true;
  a.reserved_tokens = est_tokens;
  a.reserved_micro_usd = est_micro_usd;
  if (l.rpm) {
    a.headers.limit_requests = l.rpm;
    a.headers.remaining_requests = *l.rpm - static_cast<std::int64_t>(s.minute.size());
    a.headers.reset_requests = Millis(s.minute.front() + kMinuteMs - now);
  } else if (l.rpd) {
    a.headers.limit_requests = l.rpd;
    a.headers.remaining_requests = *l.rpd - s.day_count;
    a.headers.reset_requests = Millis((s.day + 1) * kDayMs - now);
  }
  if (l.token_budget) a.headers.budget_tokens_left = *l.token_budget - s.used.tokens - s.local.tokens * share;
  if (l.budget_usd)
    a.headers.budget_micro_usd_left =
        to_micro_usd(*l.budget_usd) - s.used.micro_usd - s.local.micro_usd * share;
  if (l.tpm) {
    a.headers.limit_tokens = l.tpm;
    a.headers.remaining_tokens = *l.tpm - minute_tokens;
    a.headers.reset_tokens = Millis(s.tokens.empty() ? 0 : (s.tokens.front().first + 60) * 1000 - now);
  }
  return a;
}

std::optional<Millis> LocalLimiter::admit_provider(const std::string& provider_id, const ProviderLimits& full,
                                                   LimitClock::time_point now_tp, std::int64_t share) {
  State& s = state("p:" + provider_id);
  const std::int64_t now = ms_of(now_tp);
  prune(s, now);
  const auto rpm = part(full.rpm, share), rpd = part(full.rpd, share);
  if (rpm && static_cast<std::int64_t>(s.minute.size()) >= *rpm)
    return Millis(s.minute.empty() ? 1000 : s.minute.front() + kMinuteMs - now);
  if (rpd && s.day_count >= *rpd) return Millis((s.day + 1) * kDayMs - now);
  s.minute.push_back(now);
  ++s.day_count;
  return std::nullopt;
}

void LocalLimiter::finish(const std::string& key_id, std::int64_t tokens, std::int64_t micro_usd,
                          LimitClock::time_point now) {
  State& s = state("k:" + key_id);
  if (s.in_flight > 0) --s.in_flight;
  s.local.tokens += tokens;
  s.local.micro_usd += micro_usd;
  if (tokens > 0) s.tokens.emplace_back(ms_of(now) / 1000, tokens);
}

}  // namespace core
