#pragma once
// The user_keys table. Only hashes are stored, never a plaintext key. A revoked key is gone for
// good: list / get / update / rotate do not see it (errc::not_found), so it can never be
// re-activated; revoke itself is idempotent.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace storage {

class Db;

class KeyRepo {
 public:
  explicit KeyRepo(Db& db) : db_(db) {}

  // key_hash: 64 hex chars (SHA-256). A hash already stored -> conflict.
  boost::asio::awaitable<core::Result<core::UserKey>> create(core::NewUserKey key, std::string key_hash,
                                                             std::string key_prefix);
  boost::asio::awaitable<core::Result<std::vector<core::UserKey>>> list();  // by created_at
  boost::asio::awaitable<core::Result<core::UserKey>> get(std::string id);
  // Returns the key and its hash (to invalidate / refresh the auth cache). Limits change field by
  // field (KeyLimitsPatch); reset_usage moves budget_reset_at to now() and zeroes the key's
  // key_budget_usage, in the same transaction. A limit out of range (a count <= 0, a negative or
  // non-finite budget_usd) -> invalid_request naming it, here and in create.
  boost::asio::awaitable<core::Result<std::pair<core::UserKey, std::string>>> update(
      std::string id, core::UserKeyPatch patch);
  // Replaces hash and prefix, keeps is_active as it is. Returns the key and its OLD hash.
  boost::asio::awaitable<core::Result<std::pair<core::UserKey, std::string>>> rotate(std::string id,
                                                                                     std::string new_hash,
                                                                                     std::string new_prefix);
  // is_active = false, revoked_at = now() (kept from the first call). Returns the hash.
  boost::asio::awaitable<core::Result<std::string>> revoke(std::string id);
  // The active, unrevoked key with this hash, if any (auth fallback when the cache misses).
  boost::asio::awaitable<core::Result<std::optional<core::KeyRecord>>> find_active(std::string key_hash);
  // Every active, unrevoked key as (hash, record), to warm the auth cache.
  using HashAndRecord = std::pair<std::string, core::KeyRecord>;
  boost::asio::awaitable<core::Result<std::vector<HashAndRecord>>> active_records();
  // last_used_at = now(). Best effort: a key revoked meanwhile is not an error. One write per call,
  // so the caller should rate-limit it per key.
  boost::asio::awaitable<core::Status> touch_last_used(std::string key_hash);

  // What a live key has used since its budget_reset_at, as (tokens, micro-USD); (0, 0) before its
  // first logged request. Unknown or revoked key -> not_found.
  boost::asio::awaitable<core::Result<std::pair<std::int64_t, std::int64_t>>> budget_usage(std::string key_id);
  // (key_id, tokens, micro_usd) of every unrevoked key with a token_budget or a budget_usd (active or
  // not), by key_id: to rebuild the budget counters in Redis.
  using BudgetUsage = std::tuple<std::string, std::int64_t, std::int64_t>;
  boost::asio::awaitable<core::Result<std::vector<BudgetUsage>>> budget_usages();

 private:
  Db& db_;
};

}  // namespace storage
