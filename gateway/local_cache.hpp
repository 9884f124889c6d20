#pragma once
// Per-process caches in front of Redis and PostgreSQL. All are bounded, all are dropped on an
// invalidation message (and entirely whenever the subscription is re-established, since messages
// may have been missed). Single-threaded: used only from the io_context thread.
#include "core/domain.hpp"
#include "core/upstream_target.hpp"
#include "providers/provider.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace gw {

// A route with what the relay derives from it, computed once per cache fill, not per request.
struct RouteEntry {
  core::Route route;
  std::optional<core::UpstreamTarget> target;     // nullopt: base_url unusable
  const providers::ProviderKind* kind = nullptr;  // nullptr: unknown kind
};
using RoutePtr = std::shared_ptr<const RouteEntry>;  // nullptr: no such model

inline RoutePtr make_route_entry(core::Route r) {
  auto e = std::make_shared<RouteEntry>();
  if (auto t = core::parse_upstream_target(r.base_url)) e->target = std::move(*t);
  e->kind = providers::find_kind(r.provider_kind);
  e->route = std::move(r);
  return e;
}

template <class V>
class TtlMap {
 public:
  using Clock = std::chrono::steady_clock;
  TtlMap(std::size_t max_entries, Clock::duration ttl) : max_(max_entries), ttl_(ttl) {}

  const V* find(const std::string& k) {
    auto it = map_.find(k);
    if (it == map_.end()) return nullptr;
    if (Clock::now() >= it->second.expires) {
      map_.erase(it);
      return nullptr;
    }
    return &it->second.value;
  }
  void put(std::string k, V v) {
    if (map_.size() >= max_) map_.clear();  // crude but bounded; a flood simply restarts the cache
    map_.insert_or_assign(std::move(k), Entry{std::move(v), Clock::now() + ttl_});
  }
  void erase(const std::string& k) { map_.erase(k); }
  void clear() { map_.clear(); }

 private:
  struct Entry {
    V value;
    Clock::time_point expires;
  };
  std::size_t max_;
  Clock::duration ttl_;
  std::unordered_map<std::string, Entry> map_;
};

struct LocalCaches {
  // model name -> route (nullptr = known not to exist, cached briefly against floods)
  TtlMap<RoutePtr> routes{10000, std::chrono::seconds(10)};
  // key hash -> valid. Saves the Redis round trip on the hot path. The TTL bounds how long a
  // revocation can take on a replica that missed the invalidation message (the promise is 1 s).
  TtlMap<bool> good_keys{10000, std::chrono::milliseconds(900)};
  // key hash -> invalid; keeps floods of bad keys away from PostgreSQL
  TtlMap<bool> bad_keys{10000, std::chrono::seconds(1)};
  // key hash -> last_used_at was written recently: at most one write per key per minute per replica
  TtlMap<bool> touched_keys{10000, std::chrono::seconds(60)};
  // provider id -> decrypted API key; process memory only, never Redis or logs
  TtlMap<std::string> secrets{1000, std::chrono::minutes(10)};

  // Message format: see cache/stores.hpp.
  void invalidate(std::string_view message) {
    if (message.rfind("key:", 0) == 0) {
      const std::string hash(message.substr(4));
      good_keys.erase(hash);
      bad_keys.erase(hash);
    } else if (message.rfind("provider:", 0) == 0) {
      secrets.erase(std::string(message.substr(9)));
      routes.clear();
    } else {
      clear();
    }
  }
  void clear() {
    routes.clear();
    good_keys.clear();
    bad_keys.clear();
    secrets.clear();
  }
};

}  // namespace gw
