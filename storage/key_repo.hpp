#pragma once
// The user_keys table. Only hashes are stored, never a plaintext key. A revoked key is gone for
// good: list / get / update / rotate do not see it (errc::not_found), so it can never be
// re-activated; revoke itself is idempotent.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
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
  // Returns the key and its hash (to invalidate / refresh the auth cache).
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

 private:
  Db& db_;
};

}  // namespace storage
