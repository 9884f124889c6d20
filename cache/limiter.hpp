#pragma once
// Rate limits and budgets shared by every replica, in Redis (scripts in limiter_scripts.hpp).
// Admission is one round trip for a key's limits and the providers of its first routes together;
// the end of a request is queued at once without waiting (reconcile). Keys and providers without
// limits cost nothing: callers do not call in then.
#include "cache/redis_client.hpp"
#include "core/limits.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cache {

struct KeyAdmit {
  std::string key_id;
  core::KeyLimits limits;
  std::int64_t est_tokens = 0, est_micro_usd = 0;
};

struct ProviderCandidate {
  std::string provider_id;
  core::ProviderLimits limits;
};

struct AdmitResult {
  core::Admission key;     // admitted with no headers when there was no key to check
  std::int64_t at_ms = 0;  // Redis's time of the admission (reconcile and release need it)
  // The first candidate with quota (candidates without limits always have it); nullopt: none,
  // and provider_retry says when the earliest frees up.
  std::optional<std::size_t> provider;
  std::optional<core::Millis> provider_retry;
  core::LocalLimiter::Used used;  // the key's budget use as Redis saw it
};

class Limiter {
 public:
  Limiter(std::shared_ptr<RedisClient> redis, std::string prefix, core::Millis clock_offset,
          core::Millis lease);

  // `key` may be null (no key limits). The admission id must be unique per request.
  boost::asio::awaitable<core::Result<AdmitResult>> admit(const KeyAdmit* key,
                                                          std::span<const ProviderCandidate> candidates,
                                                          std::string admission_id);
  // The rest is queued at once, not awaited (EVALSHA; after NOSCRIPT, SCRIPT LOAD and the same
  // again); false when Redis is not connected. `at_ms` is AdmitResult::at_ms.
  // The request is over: its lease and reservation go, its usage counts.
  bool reconcile(const KeyAdmit& key, const std::string& admission_id, std::int64_t at_ms,
                 std::int64_t tokens, std::int64_t micro_usd);
  // An admission that was not used after all (no route took the request).
  bool release(const KeyAdmit& key, const std::string& admission_id, std::int64_t at_ms);
  bool release(const ProviderCandidate& provider, const std::string& admission_id, std::int64_t at_ms);
  // Requests of `key_id` still running keep their slot and reservation for another lease.
  bool renew(const std::string& key_id, const std::vector<std::string>& admission_ids);

  // Budget use from PostgreSQL. After Redis lost it (a cache rebuild): set only where Redis has
  // none, since Redis is newer otherwise. When a key gets a budget: overwrite, since Redis does not
  // count keys without one.
  struct UsedSeed {
    std::string key_id;
    std::int64_t tokens = 0, micro_usd = 0;
  };
  boost::asio::awaitable<core::Status> seed_used(std::vector<UsedSeed> seeds, bool overwrite);
  boost::asio::awaitable<core::Status> seed_used(const std::string& key_id, std::int64_t tokens,
                                                 std::int64_t micro_usd);
  // What a key's budgets have used, as Redis counts it (nullopt: Redis has no count for it).
  boost::asio::awaitable<core::Result<std::optional<core::LocalLimiter::Used>>> used(
      const std::string& key_id);
  // PUT reset_usage (zero: the counters restart at an explicit 0, reservations dropped) or a budget
  // removed (zero false: both dropped).
  boost::asio::awaitable<core::Status> reset_used(const std::string& key_id, bool zero);

  core::Millis lease() const noexcept { return lease_; }

 private:
  struct Script {
    explicit Script(std::string_view text);
    std::string_view text;  // lives as long as the process
    std::string sha;
  };
  std::string key_name(const std::string& key_id, std::string_view what) const;
  std::string key_base(const std::string& key_id) const;  // a key's counters: this + "rpm", ...
  std::string provider_base(const std::string& provider_id) const;
  // Queues `cmd` (a call of `s`) without waiting; after NOSCRIPT, loads `s` and sends it again.
  bool fire(const Script& s, EncodedCommands cmd);

  std::shared_ptr<RedisClient> redis_;
  std::string prefix_;
  core::Millis offset_, lease_;
  Script admit_key_, admit_provider_, reconcile_, release_, release_provider_, renew_;
};

}  // namespace cache
