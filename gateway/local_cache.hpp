#pragma once
// Per-worker caches in front of Redis and PostgreSQL. All are bounded (entries and age), all are
// dropped on an invalidation message (and entirely whenever the subscription is re-established,
// since messages may have been missed). Single-threaded: used only from the worker's thread.
#include "core/bounded_cache.hpp"
#include "core/domain.hpp"
#include "core/upstream_target.hpp"
#include "providers/provider.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace gw {

// A route with what the relay derives from it, computed once per cache fill, not per request.
struct TargetEntry {
  core::RouteTarget route;
  std::optional<core::UpstreamTarget> target;     // nullopt: base_url unusable
  const providers::ProviderKind* kind = nullptr;  // nullptr: unknown kind
};

TargetEntry make_target_entry(core::RouteTarget r);

// A model's routes, as core::plan_attempts wants them, and the derived entries, index for index.
struct ModelEntry {
  core::ModelRoutes model;
  std::vector<TargetEntry> targets;
};
using ModelPtr = std::shared_ptr<const ModelEntry>;  // nullptr: no such model

ModelPtr make_model_entry(core::ModelRoutes m);

using KeyPtr = std::shared_ptr<const core::KeyRecord>;
using SecretsPtr = std::shared_ptr<const core::ProviderSecrets>;

// The last credentials seen per provider, used only while PostgreSQL cannot answer: a cache
// rebuild, a resubscription or a worker that never needed this provider before then does not turn a
// PostgreSQL outage into failed requests. One per process, shared by its workers (hence the lock;
// it is touched once per credential fetch, not per request). An explicit change of the provider
// erases it like the fresh copy.
class SecretsFallback {
 public:
  void put(const std::string& provider_id, SecretsPtr s) {
    std::lock_guard lock(mutex_);
    cache_.put(provider_id, std::move(s));
  }
  SecretsPtr find(std::string_view provider_id) {
    std::lock_guard lock(mutex_);
    const auto* hit = cache_.find(provider_id);
    return hit ? *hit : nullptr;
  }
  void erase(std::string_view provider_id) {
    std::lock_guard lock(mutex_);
    cache_.erase(provider_id);
  }

 private:
  std::mutex mutex_;
  core::BoundedCache<SecretsPtr> cache_{1000, std::chrono::hours(24)};
};

struct LocalCaches {
  // model name -> routes (nullptr = known not to exist, cached briefly against floods). Names are
  // at most core::kMaxModelName bytes, so the bound is in bytes too.
  core::BoundedCache<ModelPtr> routes{10000, std::chrono::seconds(10)};
  // key hash -> record. Saves the Redis round trip on the hot path. The TTL bounds how long a
  // revocation can take on a replica that missed the invalidation message (the promise is 1 s).
  core::BoundedCache<KeyPtr> good_keys{10000, std::chrono::milliseconds(900)};
  // key hash -> invalid; keeps floods of bad keys away from Redis too
  core::BoundedCache<bool> bad_keys{10000, std::chrono::seconds(1)};
  // key hash -> last_used_at was written recently: at most one write per key per minute per worker
  core::BoundedCache<bool> touched_keys{10000, std::chrono::seconds(60)};
  // provider id -> decrypted credentials; process memory only, never Redis or logs
  core::BoundedCache<SecretsPtr> secrets{1000, std::chrono::minutes(10)};
  // The process's last credentials per provider, for while PostgreSQL cannot answer (see
  // SecretsFallback); set by App.
  class SecretsFallback* secrets_fallback = nullptr;

  // Message format: see cache/stores.hpp.
  void invalidate(std::string_view message) {
    if (message.rfind("key:", 0) == 0) {
      const auto hash = message.substr(4);
      good_keys.erase(hash);
      bad_keys.erase(hash);
    } else if (message.rfind("provider:", 0) == 0) {
      secrets.erase(message.substr(9));
      if (secrets_fallback) secrets_fallback->erase(message.substr(9));
      routes.clear();
    } else {
      clear();
    }
  }
  void clear() {
    clear_redis_views();
    secrets.clear();
  }
  // What mirrors Redis (keys, routes), after Redis was rebuilt. Decrypted credentials come from
  // PostgreSQL and have their own invalidation; keeping them means a rebuild never makes the next
  // request depend on PostgreSQL.
  void clear_redis_views() {
    routes.clear();
    good_keys.clear();
    bad_keys.clear();
  }
};

}  // namespace gw
