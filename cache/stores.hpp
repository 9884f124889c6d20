#pragma once
// The gateway's data in Redis, all keys under one prefix:
//   {prefix}key_records  HASH SHA-256 of a user key -> key record JSON (core::encode_key_record)
//   {prefix}routes       HASH public model name -> its routes as JSON (core::encode_routes; no secrets)
//   {prefix}resp:<id>    a Responses API object id -> where it lives (which key, which route), with a TTL
//   {prefix}warm         set once both hashes were rebuilt from PostgreSQL: while it exists, a key
//                        missing from key_records does not exist (no PostgreSQL lookup needed)
//   {prefix}invalidate   pub/sub channel; messages "key:<hash>", "routes", "provider:<id>"
// Redis is a cache: everything here can be rebuilt from PostgreSQL at any time (warm_cache).
#include "cache/redis_client.hpp"
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cache {

struct KeyLookup {
  std::optional<core::KeyRecord> record;
  bool warm = false;  // Redis holds every key: a missing record is authoritative
};

class Stores {
 public:
  Stores(std::shared_ptr<RedisClient> redis, std::string prefix);

  const std::string& channel() const noexcept { return channel_; }

  // One round trip: the record and whether Redis is warm.
  boost::asio::awaitable<core::Result<KeyLookup>> key_lookup(std::string hash);
  boost::asio::awaitable<core::Status> put_key(std::string hash, const core::KeyRecord& record);
  boost::asio::awaitable<core::Status> remove_key(std::string hash);
  boost::asio::awaitable<core::Status> replace_keys(std::vector<std::pair<std::string, core::KeyRecord>> keys);

  boost::asio::awaitable<core::Result<std::optional<core::ModelRoutes>>> route(std::string model);
  boost::asio::awaitable<core::Result<std::vector<core::ModelRoutes>>> all_routes();
  boost::asio::awaitable<core::Status> put_route(const core::ModelRoutes& m);
  boost::asio::awaitable<core::Status> replace_routes(std::vector<core::ModelRoutes> models);

  // Responses API objects: where the one with this id was created (opaque JSON), kept `ttl`.
  boost::asio::awaitable<core::Status> put_response(std::string id, std::string where, std::chrono::seconds ttl);
  boost::asio::awaitable<core::Result<std::optional<std::string>>> response(std::string id);

  // The warm marker (see above).
  boost::asio::awaitable<core::Status> mark_warm();
  boost::asio::awaitable<core::Status> mark_cold();

  boost::asio::awaitable<core::Status> publish(std::string message);
  boost::asio::awaitable<core::Status> ping();

 private:
  // Atomically swaps a freshly built collection in: build under a temp key, then RENAME.
  boost::asio::awaitable<core::Status> replace(const std::string& key,
                                               std::vector<std::vector<std::string>> fill);

  std::shared_ptr<RedisClient> redis_;
  std::string key_records_, routes_, warm_, channel_, legacy_keys_, responses_;
};

}  // namespace cache
