#include "gateway/limits.hpp"

#include "core/ascii.hpp"
#include "core/config.hpp"
#include "core/keys.hpp"
#include "core/log.hpp"
#include "gateway/app.hpp"
#include "gateway/exchange.hpp"
#include "gateway/local_cache.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace gw {
namespace {

using core::errc;
using core::LimitReason;

constexpr auto kHeartbeat = std::chrono::seconds(10);
constexpr std::int64_t kReplicaTtlMs = 30'000;  // three missed heartbeats: gone

std::string retry_text(core::Millis d) {
  return core::openai_duration(d);
}

std::int64_t retry_seconds(core::Millis d) {
  return std::max<std::int64_t>(1, (d.count() + 999) / 1000);
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

core::LimitClock::time_point limiter_now(const core::Config& cfg) {
  return core::LimitClock::now() + std::chrono::milliseconds(cfg.limit_clock_offset_ms);
}

// What the client is told, in OpenAI's words where it has some.
std::string refusal_message(const core::Admission& a, const core::KeyLimits& l) {
  const std::string retry = a.retry_after ? " Please try again in " + retry_text(*a.retry_after) + "." : "";
  switch (a.reason) {
    case LimitReason::rpm:
      return fmt::format("Rate limit reached for requests per minute (rpm): limit {}.{}", l.rpm.value_or(0),
                         retry);
    case LimitReason::rpd:
      return fmt::format("Rate limit reached for requests per day (rpd): limit {}.{}", l.rpd.value_or(0),
                         retry);
    case LimitReason::tpm:
      return fmt::format("Rate limit reached for tokens per minute (tpm): limit {}.{}", l.tpm.value_or(0),
                         retry);
    case LimitReason::parallel:
      return fmt::format("Too many requests in flight for this key (max_parallel {}).{}",
                         l.max_parallel.value_or(0), retry);
    case LimitReason::token_budget:
      return fmt::format("This key's token budget ({} tokens) is spent.", l.token_budget.value_or(0));
    case LimitReason::budget_usd:
      return fmt::format("This key's budget (${}) is spent.", l.budget_usd.value_or(0));
    case LimitReason::provider:
    case LimitReason::none:
      break;
  }
  return "Rate limit reached." + retry;
}

}  // namespace

LimitState::LimitState(std::shared_ptr<cache::RedisClient> redis, const core::Config& cfg, net::any_io_executor ex,
                       std::string instance)
    : shared(std::move(redis), cfg.redis_prefix, core::Millis(cfg.limit_clock_offset_ms),
             std::chrono::duration_cast<core::Millis>(cfg.limit_lease)),
      instance_id(std::move(instance)),
      tick_(std::move(ex)),
      workers_(static_cast<std::int64_t>(std::max<std::size_t>(1, cfg.workers))) {}

void LimitState::note_redis(bool reachable) {
  if (fallback == !reachable) return;
  fallback = !reachable;
  if (fallback)
    core::log::warn("rate limits: Redis unreachable, each worker now enforces them on its own",
                    {{"share", share()}});
  else
    core::log::info("rate limits: Redis reachable again, limits are shared across replicas");
}

void LimitState::stop() {
  stopped_ = true;
  tick_.cancel();
}

net::awaitable<void> LimitState::maintain(std::shared_ptr<cache::RedisClient> redis, std::string prefix) {
  const auto renew_every =
      std::max<Clock::duration>(to_steady(shared.lease() / 3), std::chrono::milliseconds(100));
  auto next_beat = Clock::now();
  const std::string replicas = prefix + "replicas";
  while (!stopped_) {
    for (const auto& [key_id, ids] : running) shared.renew(key_id, ids);
    if (Clock::now() >= next_beat && redis->connected()) {
      next_beat = Clock::now() + kHeartbeat;
      const auto now = wall_ms();
      std::vector<std::vector<std::string>> beat{
          {"ZADD", replicas, std::to_string(now), instance_id},
          {"ZREMRANGEBYSCORE", replicas, "-inf", std::to_string(now - kReplicaTtlMs)},
          {"PEXPIRE", replicas, std::to_string(kReplicaTtlMs * 2)},
          {"ZCARD", replicas}};
      auto r = co_await redis->pipeline(std::move(beat));
      if (r && r->size() == 4 && (*r)[3].type == cache::Reply::Type::integer)
        live_replicas = std::max<std::int64_t>(1, (*r)[3].integer);
      if (stopped_) break;
    }
    auto wait = std::min<Clock::duration>(renew_every, kHeartbeat);
    // A beat that is due could not go out (Redis not connected yet, e.g. just after start-up):
    // try again soon, not a whole heartbeat later, or the replica count stays stale that long.
    if (Clock::now() >= next_beat) wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(200));
    tick_.expires_after(wait);
    co_await tick_.async_wait(use_tuple);
  }
  // Leaving: the others stop counting this process at once.
  std::vector<std::vector<std::string>> leave{{"ZREM", replicas, instance_id}};
  redis->send(leave);
}

RequestLimits::~RequestLimits() {
  if (key_ && !finished_) finish({}, {}, 0);
}

void RequestLimits::set_headers(const core::RateHeaders& h) {
  headers_.clear();
  h.append_to(headers_);
  fields_.clear();
  for (const auto& [name, value] : headers_) fields_.push_back({name, value});
}

void RequestLimits::decorate(Response& res) const {
  if (!key_) return;
  std::erase_if(res.headers, [](const auto& h) { return core::istarts_with(h.first, "x-ratelimit-"); });
  res.headers.insert(res.headers.end(), headers_.begin(), headers_.end());
}

net::awaitable<std::optional<Response>> RequestLimits::admit(Exchange& ex, const ModelEntry& model,
                                                             std::vector<std::size_t>& attempts,
                                                             std::string_view body) {
  LimitState& st = app_.limits;
  std::vector<cache::ProviderCandidate> candidates;
  candidates.reserve(attempts.size());
  bool providers_limited = false;
  for (const auto i : attempts) {
    const auto& route = model.targets[i].route;
    candidates.push_back({route.provider_id, route.provider_limits});
    providers_limited = providers_limited || route.provider_limits.any();
  }
  const bool key_limited = ex.key && ex.key->limits.any();
  if ((!key_limited && !providers_limited) || attempts.empty()) co_return std::nullopt;  // nothing to count

  admission_id_ = core::generate_request_id();
  std::optional<cache::KeyAdmit> key;
  if (key_limited) {
    const auto est = core::estimate_tokens(body);
    key = cache::KeyAdmit{
        .key_id = ex.key->id,
        .limits = ex.key->limits,
        .est_tokens = est,
        .est_micro_usd = core::estimate_micro_usd(est, model.targets[attempts.front()].route.pricing)};
  }
  const cache::KeyAdmit* key_ptr = key ? &*key : nullptr;
  auto shared = co_await st.shared.admit(key_ptr, candidates, admission_id_);
  cache::AdmitResult result;
  if (shared) {
    st.note_redis(true);
    result = std::move(*shared);
    if (key && (key->limits.token_budget || key->limits.budget_usd))
      st.local.remember_used(key->key_id, result.used);
  } else {
    // Redis cannot answer: this worker decides, with its share of each limit.
    st.note_redis(false);
    local_ = true;
    ++st.local_admissions;
    const auto now = limiter_now(app_.cfg);
    result.key.admitted = true;
    if (key)
      result.key =
          st.local.admit(key->key_id, key->limits, key->est_tokens, key->est_micro_usd, now, st.share());
    if (result.key.admitted) {
      for (std::size_t i = 0; i < candidates.size() && !result.provider; ++i) {
        if (!candidates[i].limits.any()) {
          result.provider = i;
          break;
        }
        const auto wait =
            st.local.admit_provider(candidates[i].provider_id, candidates[i].limits, now, st.share());
        if (!wait)
          result.provider = i;
        else if (!result.provider_retry || *wait < *result.provider_retry)
          result.provider_retry = wait;
      }
    }
  }

  const bool provider_counted = result.provider && candidates[*result.provider].limits.any();
  if (key && !result.key.admitted) {  // the key is at a limit
    if (provider_counted && !local_)
      st.shared.release(candidates[*result.provider], admission_id_, result.at_ms);
    ++st.refused;
    app_.metrics.rate_limited(core::to_string(result.key.reason));
    ex.error = core::to_string(result.key.reason);
    const auto code =
        core::is_quota(result.key.reason) ? errc::insufficient_quota : errc::rate_limit_exceeded;
    Response res = ex.fail({code, refusal_message(result.key, key->limits)});
    if (result.key.retry_after)
      res.headers.emplace_back("Retry-After", std::to_string(retry_seconds(*result.key.retry_after)));
    result.key.headers.append_to(res.headers);
    co_return res;
  }
  key_ = std::move(key);
  at_ms_ = result.at_ms;
  if (key_) set_headers(result.key.headers);
  if (!result.provider) {  // every route's provider is at its limit
    provider_retry_ = result.provider_retry;
    release();
    ++st.refused;
    app_.metrics.rate_limited("provider");
    ex.error = "provider_limit";
    co_return provider_refusal(ex);
  }
  if (provider_counted) providers_.push_back({candidates[*result.provider], result.at_ms, local_});
  // Providers before the chosen one are at their limits: skipped like cooling routes.
  attempts.erase(attempts.begin(), attempts.begin() + static_cast<std::ptrdiff_t>(*result.provider));
  // Parallel slots and reservations live for a lease: this worker renews them while it runs.
  if (key_ && !local_ && (key_->limits.max_parallel || key_->limits.token_budget || key_->limits.budget_usd))
    st.running[key_->key_id].push_back(admission_id_);
  co_return std::nullopt;
}

net::awaitable<bool> RequestLimits::admit_provider(const core::RouteTarget& route) {
  if (!route.provider_limits.any()) co_return true;
  for (const auto& c : providers_)
    if (c.provider.provider_id == route.provider_id) co_return true;  // counted once per request
  LimitState& st = app_.limits;
  if (admission_id_.empty()) admission_id_ = core::generate_request_id();
  std::vector<cache::ProviderCandidate> one{{route.provider_id, route.provider_limits}};
  auto shared = co_await st.shared.admit(nullptr, one, admission_id_);
  std::optional<core::Millis> wait;
  bool local = false;
  std::int64_t at = 0;
  if (shared) {
    st.note_redis(true);
    at = shared->at_ms;
    if (!shared->provider) wait = shared->provider_retry.value_or(core::Millis(1000));
  } else {
    st.note_redis(false);
    local = true;
    wait =
        st.local.admit_provider(route.provider_id, route.provider_limits, limiter_now(app_.cfg), st.share());
  }
  if (wait) {
    if (!provider_retry_ || *wait < *provider_retry_) provider_retry_ = wait;
    app_.metrics.rate_limited("provider");
    co_return false;
  }
  providers_.push_back({one.front(), at, local});
  co_return true;
}

Response RequestLimits::provider_refusal(const Exchange& ex) const {
  const auto retry = provider_retry_.value_or(core::Millis(1000));
  Response res = ex.fail({errc::rate_limit_exceeded,
                          "Every provider serving this model is at its rate limit. Please try again in " +
                              retry_text(retry) + "."});
  res.headers.emplace_back("Retry-After", std::to_string(retry_seconds(retry)));
  decorate(res);
  return res;
}

void RequestLimits::forget_running() {
  auto it = app_.limits.running.find(key_->key_id);
  if (it == app_.limits.running.end()) return;
  std::erase(it->second, admission_id_);
  if (it->second.empty()) app_.limits.running.erase(it);
}

void RequestLimits::finish(const core::Usage& usage, const core::Pricing& pricing, unsigned status) {
  if (!key_ || finished_) return;
  finished_ = true;
  forget_running();
  const bool success = status >= 200 && status < 300;
  std::int64_t tokens = 0, micro_usd = 0;
  if (usage.seen) {
    tokens = usage.total_tokens;
    micro_usd = core::to_micro_usd(core::cost_usd(usage, pricing).value_or(0.0));
  } else if (success) {  // answered, but its usage never came (a cut stream, a silent provider)
    tokens = key_->est_tokens;
    micro_usd = key_->est_micro_usd;
  }
  if (local_)
    app_.limits.local.finish(key_->key_id, tokens, micro_usd, limiter_now(app_.cfg));
  else if (!app_.limits.shared.reconcile(*key_, admission_id_, at_ms_, tokens, micro_usd))
    core::log::debug("rate limits: usage not reconciled (Redis unreachable); the reservation expires");
}

void RequestLimits::release() {
  LimitState& st = app_.limits;
  for (const auto& c : providers_)
    if (!c.local) st.shared.release(c.provider, admission_id_, c.at_ms);
  providers_.clear();
  if (!key_ || finished_) return;
  finished_ = true;
  forget_running();
  if (local_)
    st.local.finish(key_->key_id, 0, 0, limiter_now(app_.cfg));
  else
    st.shared.release(*key_, admission_id_, at_ms_);
}

}  // namespace gw
