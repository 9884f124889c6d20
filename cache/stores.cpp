#include "cache/stores.hpp"

#include "core/keys.hpp"
#include "core/route_codec.hpp"

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
      keys_(prefix + "keys"),
      routes_(prefix + "routes"),
      channel_(prefix + "invalidate") {}

net::awaitable<core::Result<bool>> Stores::key_active(std::string hash) {
  std::vector<std::string> cmd{"SISMEMBER", keys_, std::move(hash)};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type != Reply::Type::integer) co_return core::Error{errc::cache_unavailable};
  co_return r->integer == 1;
}

net::awaitable<core::Status> Stores::add_key(std::string hash) {
  std::vector<std::string> cmd{"SADD", keys_, std::move(hash)};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::remove_key(std::string hash) {
  std::vector<std::string> cmd{"SREM", keys_, std::move(hash)};
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

net::awaitable<core::Status> Stores::replace_keys(std::vector<std::string> hashes) {
  std::vector<std::vector<std::string>> fill;
  for (std::size_t i = 0; i < hashes.size(); i += kBatch) {
    std::vector<std::string> cmd{"SADD"};
    for (std::size_t j = i; j < std::min(hashes.size(), i + kBatch); ++j) cmd.push_back(std::move(hashes[j]));
    fill.push_back(std::move(cmd));
  }
  co_return co_await replace(keys_, std::move(fill));
}

net::awaitable<core::Result<std::optional<core::Route>>> Stores::route(std::string model) {
  std::vector<std::string> cmd{"HGET", routes_, std::move(model)};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type == Reply::Type::nil) co_return std::optional<core::Route>{};
  if (r->type != Reply::Type::string) co_return core::Error{errc::cache_unavailable};
  auto route = core::decode_route(r->str);
  if (!route) co_return core::Error{errc::cache_unavailable};
  co_return std::optional<core::Route>{std::move(*route)};
}

net::awaitable<core::Result<std::vector<core::Route>>> Stores::all_routes() {
  std::vector<std::string> cmd{"HGETALL", routes_};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type != Reply::Type::array) co_return core::Error{errc::cache_unavailable};
  std::vector<core::Route> out;
  for (std::size_t i = 1; i < r->elements.size(); i += 2)
    if (auto route = core::decode_route(r->elements[i].str)) out.push_back(std::move(*route));
  co_return out;
}

net::awaitable<core::Status> Stores::put_route(core::Route route) {
  std::vector<std::string> cmd{"HSET", routes_, route.model_name, core::encode_route(route)};
  co_return check(co_await redis_->command(std::move(cmd)));
}

net::awaitable<core::Status> Stores::replace_routes(std::vector<core::Route> routes) {
  std::vector<std::vector<std::string>> fill;
  for (std::size_t i = 0; i < routes.size(); i += kBatch) {
    std::vector<std::string> cmd{"HSET"};
    for (std::size_t j = i; j < std::min(routes.size(), i + kBatch); ++j) {
      cmd.push_back(routes[j].model_name);
      cmd.push_back(core::encode_route(routes[j]));
    }
    fill.push_back(std::move(cmd));
  }
  co_return co_await replace(routes_, std::move(fill));
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
