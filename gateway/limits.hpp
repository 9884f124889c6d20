#pragma once
// Rate limits and budgets on the request path. One Redis round trip admits a request against its
// key's limits and the providers of its first routes (cache::Limiter); its usage is reconciled the
// moment the answer is complete; a key or provider without limits costs nothing. While Redis cannot
// be reached each worker enforces the limits itself (core::LocalLimiter), sharing them out over the
// replicas it last saw alive.
#include "cache/limiter.hpp"
#include "core/http1.hpp"
#include "core/limits.hpp"
#include "core/usage.hpp"
#include "gateway/http.hpp"
#include "gateway/response.hpp"

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace core {
struct Config;
}

namespace gw {

struct App;
struct Exchange;
struct ModelEntry;

// A worker's part in the limits.
class LimitState {
 public:
  LimitState(std::shared_ptr<cache::RedisClient> redis, const core::Config& cfg, net::any_io_executor ex,
             std::string instance_id);

  cache::Limiter shared;
  core::LocalLimiter local;
  // Running admissions of this worker, by key id: renewed every lease / 3 so a live request never
  // loses its parallel slot or reservation.
  std::unordered_map<std::string, std::vector<std::string>> running;
  bool fallback = false;               // the last admission could not reach Redis
  std::uint64_t local_admissions = 0;  // admissions decided by the fallback
  std::uint64_t refused = 0;
  std::int64_t live_replicas = 1;  // from the replicas' heartbeats in Redis, as last seen
  std::string instance_id;         // this process in the heartbeat set (every worker beats for it)

  // How many limiters share a limit while Redis is down: every worker of every live replica.
  std::int64_t share() const noexcept { return live_replicas * workers_; }
  void note_redis(bool reachable);

  // Renews leases and beats the heartbeat until stop().
  net::awaitable<void> maintain(std::shared_ptr<cache::RedisClient> redis, std::string prefix);
  void stop();

 private:
  net::steady_timer tick_;
  std::int64_t workers_;  // of this process
  bool stopped_ = false;
};

// One request's admission: made before the first upstream attempt, finished (its usage counted)
// when the answer is complete, released when no route took the request.
class RequestLimits {
 public:
  explicit RequestLimits(App& app) : app_(app) {}
  ~RequestLimits();
  RequestLimits(const RequestLimits&) = delete;
  RequestLimits& operator=(const RequestLimits&) = delete;

  // Checks the key's limits and the providers of `attempts` (in order): routes whose provider is at
  // its limit are dropped from the front, like cooling ones. A refusal is the response to send
  // (429 rate_limit_exceeded or insufficient_quota, Retry-After, the rate headers).
  net::awaitable<std::optional<Response>> admit(Exchange& ex, const ModelEntry& model,
                                                std::vector<std::size_t>& attempts, std::string_view body);
  // Before a later attempt (failover): counts the request at the route's provider if it has limits
  // and was not counted yet. False: the provider is at its limit (skip the route).
  net::awaitable<bool> admit_provider(const core::RouteTarget& route);
  // Why a route was skipped, for the response when every route was: when the earliest frees up.
  std::optional<core::Millis> provider_retry() const noexcept { return provider_retry_; }
  Response provider_refusal(const Exchange& ex) const;

  // The request is over: its real usage (or, for a successful answer whose usage never came, its
  // estimate: a cut stream does not make tokens free) counts against the key. Once.
  void finish(const core::Usage& usage, const core::Pricing& pricing, unsigned status);
  // No route took the request: the admission is undone.
  void release();

  // The key has limits: its responses carry our rate headers instead of the provider's.
  bool key_limited() const noexcept { return key_.has_value(); }
  std::span<const core::http1::Field> header_fields() const noexcept { return fields_; }
  // The gateway's own response or a replayed one: the provider's rate headers out, ours in.
  void decorate(Response& res) const;

 private:
  void set_headers(const core::RateHeaders& h);
  void forget_running();

  App& app_;
  std::optional<cache::KeyAdmit> key_;  // set: the key has limits and was admitted
  std::string admission_id_;
  std::int64_t at_ms_ = 0;  // Redis's time of the key's admission
  bool local_ = false;      // the fallback admitted the key
  bool finished_ = false;
  struct Counted {
    cache::ProviderCandidate provider;
    std::int64_t at_ms;
    bool local;
  };
  std::vector<Counted> providers_;  // provider admissions made for this request
  std::optional<core::Millis> provider_retry_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<core::http1::Field> fields_;  // views of headers_
};

}  // namespace gw
