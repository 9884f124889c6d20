#pragma once
// The gateway's data in Redis, all keys under one prefix:
//   {prefix}keys         SET of SHA-256 hashes of active user keys
//   {prefix}routes       HASH public model name -> route JSON (core::encode_route; no secrets)
//   {prefix}invalidate   pub/sub channel; messages "key:<hash>", "routes", "provider:<id>"
// Redis is a cache: everything here can be rebuilt from PostgreSQL at any time (replace_all).
#include "cache/redis_client.hpp"
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cache {

class Stores {
 public:
  Stores(std::shared_ptr<RedisClient> redis, std::string prefix);

  const std::string& channel() const noexcept { return channel_; }

  boost::asio::awaitable<core::Result<bool>> key_active(std::string hash);
  boost::asio::awaitable<core::Status> add_key(std::string hash);
  boost::asio::awaitable<core::Status> remove_key(std::string hash);
  boost::asio::awaitable<core::Status> replace_keys(std::vector<std::string> hashes);

  boost::asio::awaitable<core::Result<std::optional<core::Route>>> route(std::string model);
  boost::asio::awaitable<core::Result<std::vector<core::Route>>> all_routes();
  boost::asio::awaitable<core::Status> put_route(core::Route r);
  boost::asio::awaitable<core::Status> replace_routes(std::vector<core::Route> routes);

  boost::asio::awaitable<core::Status> publish(std::string message);
  boost::asio::awaitable<core::Status> ping();

 private:
  // Atomically swaps a freshly built collection in: build under a temp key, then RENAME.
  boost::asio::awaitable<core::Status> replace(const std::string& key,
                                               std::vector<std::vector<std::string>> fill);

  std::shared_ptr<RedisClient> redis_;
  std::string keys_, routes_, channel_;
};

}  // namespace cache
