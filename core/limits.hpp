#pragma once
// Rate limits and budgets, the parts that need no Redis: what a refusal and the rate-limit headers
// say, how many tokens a request may use before its usage is known, and the per-worker limiter
// used while Redis is down. The shared limiter itself is a set of Redis scripts (cache/limiter).
#include "core/bounded_cache.hpp"
#include "core/domain.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace core {

using LimitClock = std::chrono::system_clock;
using Millis = std::chrono::milliseconds;

enum class LimitReason : unsigned char { none, rpm, rpd, tpm, parallel, token_budget, budget_usd, provider };
std::string_view to_string(LimitReason r) noexcept;
// rate_limit_exceeded (rpm, rpd, tpm, parallel, provider) or insufficient_quota (budgets).
bool is_quota(LimitReason r) noexcept;

// What a client is told about its limits: OpenAI's x-ratelimit-* headers (requests from rpm, else
// rpd; tokens from tpm), and what is left of its budgets (x-llm-budget-remaining-tokens / -usd).
struct RateHeaders {
  std::optional<std::int64_t> limit_requests, remaining_requests;
  std::optional<Millis> reset_requests;
  std::optional<std::int64_t> limit_tokens, remaining_tokens;
  std::optional<Millis> reset_tokens;
  std::optional<std::int64_t> budget_tokens_left, budget_micro_usd_left;
  bool empty() const noexcept {
    return !limit_requests && !limit_tokens && !budget_tokens_left && !budget_micro_usd_left;
  }
  void append_to(std::vector<std::pair<std::string, std::string>>& headers) const;
};

// OpenAI's reset format: "20ms", "1s", "1.5s", "6m0s", "1h2m3s".
std::string openai_duration(Millis d);

struct Admission {
  bool admitted = false;
  LimitReason reason = LimitReason::none;
  std::optional<Millis> retry_after;  // when a slot frees (none for budgets: they do not refill)
  RateHeaders headers;
  std::int64_t reserved_tokens = 0;  // held for the request until its usage is known
  std::int64_t reserved_micro_usd = 0;
};

// Tokens a request may use, before its usage is known: its text (~4 bytes a token) plus the output
// it allows (max_tokens / max_completion_tokens / max_output_tokens), or `default_output` when it
// sets no bound. Only reserves budget; the real usage replaces it.
std::int64_t estimate_tokens(std::string_view body, std::int64_t default_output = 256) noexcept;
// Micro-USD of `tokens` at the dearer of a route's input / output prices (0 when unknown).
std::int64_t estimate_micro_usd(std::int64_t tokens, const Pricing& p) noexcept;
inline std::int64_t to_micro_usd(double usd) noexcept {
  return static_cast<std::int64_t>(usd * 1e6 + 0.5);
}

// The same limits in one worker's memory, for while Redis is down. Each limit is shared out over
// `share` limiters (the live replicas times workers last seen, so together they stay near the real
// limit): rates are divided (rounded up, at least 1), and so is what is left of a budget, counted
// from the last `used` amounts Redis reported for the key.
class LocalLimiter {
 public:
  struct Used {
    std::int64_t tokens = 0, micro_usd = 0;
  };

  Admission admit(const std::string& key_id, const KeyLimits& limits, std::int64_t est_tokens,
                  std::int64_t est_micro_usd, LimitClock::time_point now, std::int64_t share = 1);
  // A provider's rpm / rpd: nullopt when admitted (and counted), else when it frees up.
  std::optional<Millis> admit_provider(const std::string& provider_id, const ProviderLimits& limits,
                                       LimitClock::time_point now, std::int64_t share = 1);
  // The request ended (also when it failed): frees its parallel slot, counts what it used.
  void finish(const std::string& key_id, std::int64_t tokens, std::int64_t micro_usd,
              LimitClock::time_point now);
  // What Redis last said a key had used (kept for the fallback's budgets).
  void remember_used(const std::string& key_id, Used used);

 private:
  struct State {
    std::deque<std::int64_t> minute;  // admission times (ms) within the last minute
    std::int64_t day = -1, day_count = 0;
    std::deque<std::pair<std::int64_t, std::int64_t>> tokens;  // (second, tokens) within the minute
    std::int64_t in_flight = 0;
    Used used;   // as Redis last reported it
    Used local;  // finished here since then
  };
  struct Window {  // the rate counters of one key or provider, pruned to now
    std::int64_t minute_count, day_count, minute_tokens;
  };
  State& state(const std::string& id);
  static void prune(State& s, std::int64_t now_ms);
  BoundedCache<State> states_{10000, std::chrono::hours(48)};
};

}  // namespace core
