#include "cache/stores.hpp"

#include "core/keys.hpp"
#include "core/cache_codec.hpp"

namespace cache {
namespace {

using core::errc;
namespace net = boost::asio;

// A Redis error reply for a command we built ourselves means our data or Redis is broken.
core::Status check(const core::Result<Reply>& r) {
  if (!r) return r.error();
  if (r->is_error()) return core::Error{errc::cache_unavailable};
  return core::ok();
}

constexpr std::size_t kBatch = 1000;

}  // namespace

Stores::Stores(std::shared_ptr<RedisClient> redis, std::string prefix)
    : redis_(std::move(redis)),
      key_records_(prefix + "key_records"),
      routes_(prefix + "routes"),
      warm_(prefix + "warm"),
      channel_(prefix + "invalidate"),
      legacy_keys_(prefix + "keys"),
      responses_(prefix + "resp:") {}

net::awaitable<core::Result<KeyLookup>> Stores::key_lookup(std::string hash) {
  std::vector<std::vector<std::string>> cmds{{"HGET", key_records_, std::move(hash)}, {"EXISTS", warm_}};
  auto r = co_await redis_->pipeline(std::move(cmds));
  if (!r) co_return r.error();
  const Reply& record = (*r)[0];
  const Reply& warm = (*r)[1];
  if (warm.type != Reply::Type::integer) co_return core::Error{errc::cache_unavailable};
  KeyLookup out;
  out.warm = warm.integer == 1;
  if (record.type == Reply::Type::string) {
    out.record = core::decode_key_record(record.str);
    if (!out.record) co_return core::Error{errc::cache_unavailable};
  } else if (record.type != Reply::Type::nil) {
    co_return core::Error{errc::cache_unavailable};
  }
  co_return out;
}

net::awaitable<core::Status> Stores::put_key(std::string hash, const core::KeyRecord& record) {
  std::vector<std::string> cmd{"HSET", key_records_, std::move(hash), core::encode_key_record(record)};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::remove_key(std::string hash) {
  std::vector<std::string> cmd{"HDEL", key_records_, std::move(hash)};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::mark_warm() {
  std::vector<std::string> cmd{"SET", warm_, "1"};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::mark_cold() {
  // The pre-record SET of key hashes goes too: nothing reads it any more.
  std::vector<std::string> cmd{"DEL", warm_, legacy_keys_};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::replace(const std::string& key,
                                             std::vector<std::vector<std::string>> fill) {
  // A unique temp name so two replicas warming up at once do not mix their builds.
  const std::string tmp = key + ":tmp:" + core::generate_uuid_v4();
  std::vector<std::vector<std::string>> cmds = std::move(fill);
  for (auto& c : cmds) c.insert(c.begin() + 1, tmp);
  if (cmds.empty())
    cmds.push_back({"DEL", key});
  else
    cmds.push_back({"RENAME", tmp, key});
  auto r = co_await redis_->pipeline(std::move(cmds));
  if (!r) co_return r.error();
  for (auto& reply : *r)
    if (reply.is_error()) co_return core::Error{errc::cache_unavailable};
  co_return core::ok();
}

net::awaitable<core::Status> Stores::replace_keys(std::vector<std::pair<std::string, core::KeyRecord>> keys) {
  std::vector<std::vector<std::string>> fill;
  for (std::size_t i = 0; i < keys.size(); i += kBatch) {
    std::vector<std::string> cmd{"HSET"};
    for (std::size_t j = i; j < std::min(keys.size(), i + kBatch); ++j) {
      cmd.push_back(std::move(keys[j].first));
      cmd.push_back(core::encode_key_record(keys[j].second));
    }
    fill.push_back(std::move(cmd));
  }
  co_return co_await replace(key_records_, std::move(fill));
}

net::awaitable<core::Result<std::optional<core::ModelRoutes>>> Stores::route(std::string model) {
  std::vector<std::string> cmd{"HGET", routes_, std::move(model)};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type == Reply::Type::nil) co_return std::optional<core::ModelRoutes>{};
  if (r->type != Reply::Type::string) co_return core::Error{errc::cache_unavailable};
  auto routes = core::decode_routes(r->str);
  if (!routes) co_return core::Error{errc::cache_unavailable};  // another version's format: ask PostgreSQL
  co_return std::optional<core::ModelRoutes>{std::move(*routes)};
}

net::awaitable<core::Result<std::vector<core::ModelRoutes>>> Stores::all_routes() {
  std::vector<std::string> cmd{"HGETALL", routes_};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type != Reply::Type::array) co_return core::Error{errc::cache_unavailable};
  std::vector<core::ModelRoutes> out;
  for (std::size_t i = 1; i < r->elements.size(); i += 2)
    if (auto routes = core::decode_routes(r->elements[i].str)) out.push_back(std::move(*routes));
  co_return out;
}

net::awaitable<core::Status> Stores::put_route(const core::ModelRoutes& m) {
  std::vector<std::string> cmd{"HSET", routes_, m.model_name, core::encode_routes(m)};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::replace_routes(std::vector<core::ModelRoutes> models) {
  std::vector<std::vector<std::string>> fill;
  for (std::size_t i = 0; i < models.size(); i += kBatch) {
    std::vector<std::string> cmd{"HSET"};
    for (std::size_t j = i; j < std::min(models.size(), i + kBatch); ++j) {
      cmd.push_back(models[j].model_name);
      cmd.push_back(core::encode_routes(models[j]));
    }
    fill.push_back(std::move(cmd));
  }
  co_return co_await replace(routes_, std::move(fill));
}

net::awaitable<core::Status> Stores::put_response(std::string id, std::string where, std::chrono::seconds ttl) {
  std::vector<std::string> cmd{"SET", responses_ + id, std::move(where), "EX", std::to_string(ttl.count())};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Result<std::optional<std::string>>> Stores::response(std::string id) {
  std::vector<std::string> cmd{"GET", responses_ + id};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type == Reply::Type::nil) co_return std::optional<std::string>{};
  if (r->type != Reply::Type::string) co_return core::Error{errc::cache_unavailable};
  co_return std::optional<std::string>{std::move(r->str)};
}

net::awaitable<core::Status> Stores::publish(std::string message) {
  std::vector<std::string> cmd{"PUBLISH", channel_, std::move(message)};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::ping() {
  std::vector<std::string> cmd{"PING"};
  co_return check(co_await redis_->command(std::move(cmd)));
}

}  // namespace cache
