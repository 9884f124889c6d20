#include "cache/stores.hpp"

#include "core/cache_codec.hpp"
#include "core/keys.hpp"

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

// A GET of a generation: its value, "0" for a hash never written; nullopt for any other reply.
std::optional<std::string> generation_of(Reply& r) {
  if (r.type == Reply::Type::nil) return std::string("0");
  if (r.type != Reply::Type::string) return std::nullopt;
  return std::move(r.str);
}

// KEYS: hash, its generation. ARGV: op ("set" field value | "del" field).
// A committed change: written, and the generation raised, in one step.
constexpr std::string_view kChange = R"lua(
if ARGV[1] == 'set' then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) else redis.call('HDEL', KEYS[1], ARGV[2]) end
redis.call('INCR', KEYS[2])
return 1
)lua";

// KEYS: hash, its generation. ARGV: generation read before PostgreSQL, field, value.
// A read repair: written only if nothing changed the hash since that generation was read.
constexpr std::string_view kRepair = R"lua(
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
)lua";

// KEYS: temp hash (the snapshot, absent when empty), hash, its generation. ARGV: generation read
// before the snapshot. The snapshot replaces the hash unless a change came in since.
constexpr std::string_view kSwap = R"lua(
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) else redis.call('DEL', KEYS[2]) end
redis.call('INCR', KEYS[3])
return 1
)lua";

}  // namespace

Stores::Stores(std::shared_ptr<RedisClient> redis, std::string prefix)
    : redis_(std::move(redis)),
      key_records_(prefix + "key_records"),
      routes_(prefix + "routes"),
      warm_(prefix + "warm"),
      channel_(prefix + "invalidate"),
      legacy_keys_(prefix + "keys"),
      responses_(prefix + "resp:"),
      key_records_gen_(key_records_ + ":gen"),
      routes_gen_(routes_ + ":gen") {}

net::awaitable<core::Result<long long>> Stores::eval(std::vector<std::string> cmd) {
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type != Reply::Type::integer) co_return core::Error{errc::cache_unavailable};
  co_return r->integer;
}

net::awaitable<core::Result<std::string>> Stores::generation(const std::string& gen_key) {
  std::vector<std::string> cmd{"GET", gen_key};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  auto gen = generation_of(*r);
  if (!gen) co_return core::Error{errc::cache_unavailable};
  co_return std::move(*gen);
}

net::awaitable<core::Result<std::string>> Stores::keys_generation() {
  co_return co_await generation(key_records_gen_);
}

net::awaitable<core::Result<std::string>> Stores::routes_generation() {
  co_return co_await generation(routes_gen_);
}

net::awaitable<core::Result<KeyLookup>> Stores::key_lookup(std::string hash) {
  std::vector<std::vector<std::string>> cmds{
      {"HGET", key_records_, std::move(hash)}, {"EXISTS", warm_}, {"GET", key_records_gen_}};
  auto r = co_await redis_->pipeline(std::move(cmds));
  if (!r) co_return r.error();
  const Reply& record = (*r)[0];
  const Reply& warm = (*r)[1];
  auto gen = generation_of((*r)[2]);
  if (warm.type != Reply::Type::integer || !gen) co_return core::Error{errc::cache_unavailable};
  KeyLookup out;
  out.warm = warm.integer == 1;
  out.generation = std::move(*gen);
  if (record.type == Reply::Type::string) {
    out.record = core::decode_key_record(record.str);
    if (!out.record) co_return core::Error{errc::cache_unavailable};
  } else if (record.type != Reply::Type::nil) {
    co_return core::Error{errc::cache_unavailable};
  }
  co_return out;
}

net::awaitable<core::Status> Stores::put_key(std::string hash, const core::KeyRecord& record) {
  std::vector<std::string> cmd{
      "EVAL",          std::string(kChange),           "2", key_records_, key_records_gen_, "set",
      std::move(hash), core::encode_key_record(record)};
  const auto r = co_await eval(std::move(cmd));
  co_return core::status_of(r);
}

net::awaitable<core::Status> Stores::remove_key(std::string hash) {
  std::vector<std::string> cmd{"EVAL", std::string(kChange), "2", key_records_, key_records_gen_,
                               "del",  std::move(hash)};
  const auto r = co_await eval(std::move(cmd));
  co_return core::status_of(r);
}

net::awaitable<core::Result<bool>> Stores::put_key_if(std::string hash, const core::KeyRecord& record,
                                                      std::string generation) {
  std::vector<std::string> cmd{"EVAL",
                               std::string(kRepair),
                               "2",
                               key_records_,
                               key_records_gen_,
                               std::move(generation),
                               std::move(hash),
                               core::encode_key_record(record)};
  auto r = co_await eval(std::move(cmd));
  if (!r) co_return r.error();
  co_return *r == 1;
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

net::awaitable<core::Result<bool>> Stores::replace(const std::string& key, const std::string& gen_key,
                                                   std::vector<std::vector<std::string>> fill,
                                                   std::string generation) {
  // A unique temp name so two replicas warming up at once do not mix their builds.
  const std::string tmp = key + ":tmp:" + core::generate_uuid_v4();
  std::vector<std::vector<std::string>> cmds = std::move(fill);
  for (auto& c : cmds) c.insert(c.begin() + 1, tmp);
  cmds.push_back({"EVAL", std::string(kSwap), "3", tmp, key, gen_key, std::move(generation)});
  auto r = co_await redis_->pipeline(std::move(cmds));
  if (!r) co_return r.error();
  for (auto& reply : *r)
    if (reply.is_error()) co_return core::Error{errc::cache_unavailable};
  const Reply& swapped = r->back();
  if (swapped.type != Reply::Type::integer) co_return core::Error{errc::cache_unavailable};
  co_return swapped.integer == 1;
}

net::awaitable<core::Result<bool>> Stores::replace_keys(
    std::vector<std::pair<std::string, core::KeyRecord>> keys, std::string generation) {
  std::vector<std::vector<std::string>> fill;
  for (std::size_t i = 0; i < keys.size(); i += kBatch) {
    std::vector<std::string> cmd{"HSET"};
    for (std::size_t j = i; j < std::min(keys.size(), i + kBatch); ++j) {
      cmd.push_back(std::move(keys[j].first));
      cmd.push_back(core::encode_key_record(keys[j].second));
    }
    fill.push_back(std::move(cmd));
  }
  co_return co_await replace(key_records_, key_records_gen_, std::move(fill), std::move(generation));
}

net::awaitable<core::Result<RouteLookup>> Stores::route(std::string model) {
  std::vector<std::vector<std::string>> cmds{{"HGET", routes_, std::move(model)}, {"GET", routes_gen_}};
  auto r = co_await redis_->pipeline(std::move(cmds));
  if (!r) co_return r.error();
  const Reply& found = (*r)[0];
  auto gen = generation_of((*r)[1]);
  if (!gen) co_return core::Error{errc::cache_unavailable};
  RouteLookup out;
  out.generation = std::move(*gen);
  if (found.type == Reply::Type::nil) co_return out;
  if (found.type != Reply::Type::string) co_return core::Error{errc::cache_unavailable};
  out.routes = core::decode_routes(found.str);
  if (!out.routes)
    co_return core::Error{errc::cache_unavailable};  // another version's format: ask PostgreSQL
  co_return out;
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

net::awaitable<core::Result<bool>> Stores::put_route_if(const core::ModelRoutes& m, std::string generation) {
  std::vector<std::string> cmd{"EVAL",      std::string(kRepair),  "2",          routes_,
                               routes_gen_, std::move(generation), m.model_name, core::encode_routes(m)};
  auto r = co_await eval(std::move(cmd));
  if (!r) co_return r.error();
  co_return *r == 1;
}

net::awaitable<core::Result<bool>> Stores::replace_routes(std::vector<core::ModelRoutes> models,
                                                          std::string generation) {
  std::vector<std::vector<std::string>> fill;
  for (std::size_t i = 0; i < models.size(); i += kBatch) {
    std::vector<std::string> cmd{"HSET"};
    for (std::size_t j = i; j < std::min(models.size(), i + kBatch); ++j) {
      cmd.push_back(models[j].model_name);
      cmd.push_back(core::encode_routes(models[j]));
    }
    fill.push_back(std::move(cmd));
  }
  co_return co_await replace(routes_, routes_gen_, std::move(fill), std::move(generation));
}

net::awaitable<core::Status> Stores::put_response(std::string id, std::string where,
                                                  std::chrono::seconds ttl) {
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
