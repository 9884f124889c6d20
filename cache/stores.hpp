#pragma once
// The gateway's data in Redis, all keys under one prefix:
//   {prefix}key_records  HASH SHA-256 of a user key -> key record JSON (core::encode_key_record)
//   {prefix}routes       HASH public model name -> its routes as JSON (core::encode_routes; no secrets)
//   {prefix}resp:<id>    a Responses API object id -> where it lives (which key, which route), with a TTL
//   {prefix}key_records:gen, {prefix}routes:gen   a hash's generation: raised by every change
//                        written to it (an admin write, a rebuild), never by a read repair
//   {prefix}warm         set once both hashes were rebuilt from PostgreSQL: while it exists, a key
//                        missing from key_records does not exist (no PostgreSQL lookup needed)
//
// Writers race: a rebuild (any replica's start-up or Redis reconnect) reads PostgreSQL, then swaps
// its snapshot in; an admin write on another replica may commit and reach Redis in between, and a
// plain swap would undo it (a new key refused, a revoked key working again) until the next rebuild.
// So a swap happens only if the hash's generation is still the one read before the snapshot, and a
// read repair (a value PostgreSQL gave after Redis lacked it) only if nothing changed since the
// lookup. A writer that loses gets false and reads PostgreSQL again (or, for a rebuild, retries).
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
  bool warm = false;       // Redis holds every key: a missing record is authoritative
  std::string generation;  // key_records' when read (for put_key_if)
};

struct RouteLookup {
  std::optional<core::ModelRoutes> routes;
  std::string generation;  // routes' when read (for put_route_if)
};

class Stores {
 public:
  Stores(std::shared_ptr<RedisClient> redis, std::string prefix);

  const std::string& channel() const noexcept { return channel_; }

  // One round trip: the record, whether Redis is warm, and key_records' generation.
  boost::asio::awaitable<core::Result<KeyLookup>> key_lookup(std::string hash);
  // A change PostgreSQL committed (admin): written with a new generation, atomically.
  boost::asio::awaitable<core::Status> put_key(std::string hash, const core::KeyRecord& record);
  boost::asio::awaitable<core::Status> remove_key(std::string hash);
  // A read repair: written only while key_records is still at `generation` (false: it was not).
  boost::asio::awaitable<core::Result<bool>> put_key_if(std::string hash, const core::KeyRecord& record,
                                                        std::string generation);
  boost::asio::awaitable<core::Result<std::string>> keys_generation();
  // A snapshot read after keys_generation() gave `generation`: swapped in (true, with a new
  // generation) unless a change came in since (false: nothing written).
  boost::asio::awaitable<core::Result<bool>> replace_keys(
      std::vector<std::pair<std::string, core::KeyRecord>> keys, std::string generation);

  boost::asio::awaitable<core::Result<RouteLookup>> route(std::string model);
  boost::asio::awaitable<core::Result<std::vector<core::ModelRoutes>>> all_routes();
  boost::asio::awaitable<core::Result<bool>> put_route_if(const core::ModelRoutes& m, std::string generation);
  boost::asio::awaitable<core::Result<std::string>> routes_generation();
  boost::asio::awaitable<core::Result<bool>> replace_routes(std::vector<core::ModelRoutes> models,
                                                            std::string generation);

  // Responses API objects: where the one with this id was created (opaque JSON), kept `ttl`.
  boost::asio::awaitable<core::Status> put_response(std::string id, std::string where,
                                                    std::chrono::seconds ttl);
  boost::asio::awaitable<core::Result<std::optional<std::string>>> response(std::string id);

  // The warm marker (see above).
  boost::asio::awaitable<core::Status> mark_warm();
  boost::asio::awaitable<core::Status> mark_cold();

  boost::asio::awaitable<core::Status> publish(std::string message);
  boost::asio::awaitable<core::Status> ping();

 private:
  // Builds under a temp key, then swaps it in (RENAME) if `key`'s generation is still `generation`.
  boost::asio::awaitable<core::Result<bool>> replace(const std::string& key, const std::string& gen_key,
                                                     std::vector<std::vector<std::string>> fill,
                                                     std::string generation);
  boost::asio::awaitable<core::Result<std::string>> generation(const std::string& gen_key);
  // EVAL of one of the scripts in stores.cpp; the reply must be an integer.
  boost::asio::awaitable<core::Result<long long>> eval(std::vector<std::string> cmd);

  std::shared_ptr<RedisClient> redis_;
  std::string key_records_, routes_, warm_, channel_, legacy_keys_, responses_, key_records_gen_, routes_gen_;
};

}  // namespace cache
