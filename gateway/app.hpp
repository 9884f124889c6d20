#pragma once
// Everything a handler can reach, built once in main() and passed by reference.
#include "cache/redis_client.hpp"
#include "cache/stores.hpp"
#include "core/config.hpp"
#include "gateway/buffer_pool.hpp"
#include "gateway/http.hpp"
#include "gateway/local_cache.hpp"
#include "storage/db.hpp"
#include "storage/key_repo.hpp"
#include "storage/model_repo.hpp"
#include "storage/provider_repo.hpp"
#include "storage/route_repo.hpp"

#include <list>
#include <memory>

namespace gw {

class UpstreamPool;

struct App {
  App(const core::Config& c, net::io_context& io, storage::Db& d, std::shared_ptr<cache::RedisClient> r,
      UpstreamPool& pool)
      : cfg(c), ioc(io), db(d), redis(r), stores(std::move(r), c.redis_prefix), upstream(pool) {}

  const core::Config& cfg;
  net::io_context& ioc;
  storage::Db& db;
  storage::ProviderRepo providers{db};
  storage::ModelRepo models{db};
  storage::KeyRepo keys{db};
  storage::RouteRepo routes{db};
  std::shared_ptr<cache::RedisClient> redis;
  cache::Stores stores;
  LocalCaches local;
  UpstreamPool& upstream;
  BufferPool buffers;
  Clock::time_point started = Clock::now();

  bool draining = false;
  std::list<SessionEntry*> sessions;

  // Rebuilds Redis from PostgreSQL (start-up, Redis reconnect). Errors are logged, not fatal.
  net::awaitable<void> warm_cache();
  // After an admin change of providers/models: rewrite the route hash, tell every replica.
  net::awaitable<void> refresh_routes();
};

}  // namespace gw
