#include "storage/model_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

namespace storage {
namespace {

using core::Model;
using core::ModelRoute;
using core::Result;
using detail::exec;
using detail::Statement;

// numeric prices come back as float8: the API speaks doubles, and "2.5" parses either way.
#define PRICE_COLUMNS "price_input::float8, price_output::float8, price_cached_input::float8"
#define MODEL_COLUMNS                                                                           \
  "id::text, name, provider_id::text, provider_model_name, strategy, is_active, " LLMGW_SQL_TS( \
      "created_at") ", " LLMGW_SQL_TS("updated_at") ", " PRICE_COLUMNS
#define ROUTE_COLUMNS                                                                                   \
  "id::text, model_id::text, provider_id::text, provider_model_name, priority, weight, " LLMGW_SQL_TS( \
      "created_at") ", " LLMGW_SQL_TS("updated_at") ", " PRICE_COLUMNS
// A patch either replaces all three prices ($flag true) or leaves them alone.
// clang-format off
#define SET_PRICES(flag, in, out, cached)                                                        \
  " price_input = CASE WHEN " flag "::boolean THEN " in "::numeric ELSE price_input END,"       \
  " price_output = CASE WHEN " flag "::boolean THEN " out "::numeric ELSE price_output END,"    \
  " price_cached_input = CASE WHEN " flag "::boolean THEN " cached "::numeric"                  \
  " ELSE price_cached_input END,"
// clang-format on
#define ROUTE_ORDER " ORDER BY priority, created_at, id"

// FOR SHARE waits for a concurrent provider delete (which holds FOR UPDATE) and then re-checks
// deleted_at, so nothing can attach to a provider being deleted. No row -> bad provider_id.
constexpr Statement kInsert{"model_insert",
                            "INSERT INTO models (name, provider_id, provider_model_name, strategy,"
                            " price_input, price_output, price_cached_input)"
                            " SELECT $1, p.id, $3, $4, $5::numeric, $6::numeric, $7::numeric FROM providers p"
                            " WHERE p.id = $2::uuid AND p.deleted_at IS NULL FOR SHARE"
                            " RETURNING " MODEL_COLUMNS};

constexpr Statement kInsertRoute{
    "route_insert",
    "INSERT INTO model_routes (model_id, provider_id, provider_model_name, priority, weight,"
    " price_input, price_output, price_cached_input)"
    " SELECT $1::uuid, p.id, $3, $4, $5, $6::numeric, $7::numeric, $8::numeric"
    " FROM providers p"
    " WHERE p.id = $2::uuid AND p.deleted_at IS NULL FOR SHARE"
    " RETURNING " ROUTE_COLUMNS};

constexpr Statement kList{
    "model_list", "SELECT " MODEL_COLUMNS " FROM models WHERE deleted_at IS NULL ORDER BY created_at, id"};

constexpr Statement kAllRoutes{"model_all_routes", "SELECT " ROUTE_COLUMNS
                                                   " FROM model_routes WHERE deleted_at IS NULL"
                                                   " ORDER BY model_id, priority, created_at, id"};

constexpr Statement kGet{"model_get",
                         "SELECT " MODEL_COLUMNS " FROM models WHERE id = $1 AND deleted_at IS NULL"};

constexpr Statement kRoutesOf{"model_routes_of", "SELECT " ROUTE_COLUMNS
                                                 " FROM model_routes WHERE model_id = $1 AND deleted_at IS NULL"
                                                 ROUTE_ORDER};

constexpr Statement kLockLive{"model_lock_live",
                              "SELECT name FROM models WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"};

constexpr Statement kShareLiveProvider{
    "model_share_live_provider", "SELECT 1 FROM providers WHERE id = $1 AND deleted_at IS NULL FOR SHARE"};

constexpr Statement kUpdate{"model_update",
                            "UPDATE models SET"
                            " name = coalesce($2::text, name),"
                            " strategy = coalesce($3::text, strategy),"
                            " is_active = coalesce($4::boolean, is_active),"
                            SET_PRICES("$5", "$6", "$7", "$8")
                            " updated_at = now()"
                            " WHERE id = $1"};

constexpr Statement kFirstRoute{"model_first_route", "SELECT id::text FROM model_routes"
                                                     " WHERE model_id = $1 AND deleted_at IS NULL" ROUTE_ORDER
                                                     " LIMIT 1"};

// NULL = leave alone; $4 says whether provider_model_name is being set (possibly to NULL).
constexpr Statement kUpdateRoute{
    "route_update",
    "UPDATE model_routes SET"
    " provider_id = coalesce($3::uuid, provider_id),"
    " provider_model_name = CASE WHEN $4::boolean THEN $5::text ELSE provider_model_name END,"
    " priority = coalesce($6::integer, priority),"
    " weight = coalesce($7::integer, weight),"
    SET_PRICES("$8", "$9", "$10", "$11")
    " updated_at = now()"
    " WHERE id = $2 AND model_id = $1 AND deleted_at IS NULL RETURNING id"};

constexpr Statement kCountRoutes{"model_count_routes",
                                 "SELECT count(*) FROM model_routes WHERE model_id = $1 AND deleted_at IS NULL"};

constexpr Statement kSoftDeleteRoute{"route_soft_delete",
                                     "UPDATE model_routes SET deleted_at = now(), updated_at = now()"
                                     " WHERE id = $2 AND model_id = $1 AND deleted_at IS NULL RETURNING id"};

// The single-route columns follow the first route (what older replicas and the API show).
constexpr Statement kMirror{"model_mirror_first_route",
                            "UPDATE models m SET provider_id = r.provider_id, provider_model_name = r.provider_model_name"
                            " FROM (SELECT provider_id, provider_model_name FROM model_routes"
                            "       WHERE model_id = $1 AND deleted_at IS NULL" ROUTE_ORDER " LIMIT 1) r"
                            " WHERE m.id = $1"};

constexpr Statement kSoftDelete{"model_soft_delete",
                                "UPDATE models SET deleted_at = now(), is_active = false, updated_at = now()"
                                " WHERE id = $1 AND deleted_at IS NULL RETURNING name"};

constexpr Statement kSoftDeleteRoutesOf{"model_soft_delete_routes",
                                        "UPDATE model_routes SET deleted_at = now(), updated_at = now()"
                                        " WHERE model_id = $1 AND deleted_at IS NULL"};

#undef PRICE_COLUMNS
#undef SET_PRICES
#undef MODEL_COLUMNS
#undef ROUTE_COLUMNS
#undef ROUTE_ORDER

Model model_from(const pqxx::row& r) {
  Model m;
  m.id = r[0].as<std::string>();
  m.name = r[1].as<std::string>();
  m.provider_id = r[2].as<std::string>();
  m.provider_model_name = detail::optional_text(r[3]);
  m.strategy = core::parse_strategy(r[4].as<std::string>()).value_or(core::Strategy::priority);
  m.is_active = r[5].as<bool>();
  m.created_at = r[6].as<std::string>();
  m.updated_at = r[7].as<std::string>();
  m.pricing = detail::pricing_from(r, 8);
  return m;
}

ModelRoute route_from(const pqxx::row& r) {
  ModelRoute route;
  route.id = r[0].as<std::string>();
  route.model_id = r[1].as<std::string>();
  route.provider_id = r[2].as<std::string>();
  route.provider_model_name = detail::optional_text(r[3]);
  route.priority = r[4].as<int>();
  route.weight = r[5].as<int>();
  route.created_at = r[6].as<std::string>();
  route.updated_at = r[7].as<std::string>();
  route.pricing = detail::pricing_from(r, 8);
  return route;
}

// The model with its routes, read inside `tx`; not_found when it is not live.
Result<Model> load(pqxx::transaction_base& tx, const std::string& id) {
  const auto rows = exec(tx, kGet, id);
  if (rows.empty()) return core::errc::not_found;
  Model m = model_from(rows[0]);
  for (const auto& row : exec(tx, kRoutesOf, id)) m.routes.push_back(route_from(row));
  return m;
}

core::Error unknown_provider() {
  return core::Error{core::errc::invalid_request, "provider_id does not exist", "provider_id"};
}

std::string duplicate_name(const std::string& name) {
  return fmt::format("a model named '{}' already exists", name);
}

// The three price parameters of a statement, in column order.
struct PriceParams {
  std::optional<std::string> input, output, cached_input;
};
PriceParams price_params(const core::Pricing& p) {
  return {detail::numeric_param(p.input), detail::numeric_param(p.output),
          detail::numeric_param(p.cached_input)};
}

std::optional<std::string> strategy_text(const std::optional<core::Strategy>& s) {
  if (!s) return std::nullopt;
  return std::string(core::to_string(*s));
}

}  // namespace

boost::asio::awaitable<Result<Model>> ModelRepo::create(core::NewModel model) {
  const std::string name = model.name;
  auto insert = [m = std::move(model)](pqxx::connection& c) -> Result<Model> {
    pqxx::work tx(c);
    const auto price = price_params(m.pricing);
    const auto rows =
        exec(tx, kInsert, m.name, m.provider_id, m.provider_model_name,
             std::string(core::to_string(m.strategy)), price.input, price.output, price.cached_input);
    if (rows.empty()) return unknown_provider();
    const auto id = rows[0][0].as<std::string>();
    const PriceParams none;  // the model's prices apply until the route gets its own
    exec(tx, kInsertRoute, id, m.provider_id, m.provider_model_name, 0, 1, none.input, none.output,
         none.cached_input);
    auto out = load(tx, id);
    tx.commit();
    return out;
  };
  auto result = co_await db_.run<Model>(std::move(insert));
  co_return detail::explain_conflict(std::move(result), duplicate_name(name), "name");
}

boost::asio::awaitable<Result<std::vector<Model>>> ModelRepo::list() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<Model>> {
    pqxx::work tx(c);  // one snapshot for both statements
    std::vector<Model> out;
    std::unordered_map<std::string, std::size_t> index;
    for (const auto& row : exec(tx, kList)) {
      index.emplace(row[0].as<std::string>(), out.size());
      out.push_back(model_from(row));
    }
    for (const auto& row : exec(tx, kAllRoutes)) {
      auto it = index.find(row[1].as<std::string>());
      if (it != index.end()) out[it->second].routes.push_back(route_from(row));
    }
    tx.commit();
    return out;
  };
  co_return co_await db_.read<std::vector<Model>>(std::move(select));
}

boost::asio::awaitable<Result<Model>> ModelRepo::get(std::string id) {
  auto select = [id = std::move(id)](pqxx::connection& c) -> Result<Model> {
    pqxx::work tx(c);
    auto out = load(tx, id);
    tx.commit();
    return out;
  };
  co_return co_await db_.read<Model>(std::move(select));
}

boost::asio::awaitable<Result<std::pair<Model, std::string>>> ModelRepo::update(std::string id,
                                                                                core::ModelPatch patch) {
  using Updated = std::pair<Model, std::string>;
  const std::string name = patch.name.value_or("");
  auto change = [id = std::move(id), p = std::move(patch)](pqxx::connection& c) -> Result<Updated> {
    pqxx::work tx(c);
    const auto current = exec(tx, kLockLive, id);
    if (current.empty()) return core::errc::not_found;
    std::string old_name = current[0][0].as<std::string>();
    const auto price = price_params(p.pricing.value_or(core::Pricing{}));
    exec(tx, kUpdate, id, p.name, strategy_text(p.strategy), p.is_active, p.pricing.has_value(), price.input,
         price.output, price.cached_input);
    if (p.provider_id || p.provider_model_name) {
      if (p.provider_id && exec(tx, kShareLiveProvider, *p.provider_id).empty()) return unknown_provider();
      const auto first = exec(tx, kFirstRoute, id);
      if (first.empty()) return core::errc::not_found;
      const bool set_upstream_name = p.provider_model_name.has_value();
      const std::optional<std::string> upstream_name = set_upstream_name ? *p.provider_model_name : std::nullopt;
      const std::optional<int> none;
      const PriceParams no_price;
      exec(tx, kUpdateRoute, id, first[0][0].as<std::string>(), p.provider_id, set_upstream_name,
           upstream_name, none, none, false, no_price.input, no_price.output, no_price.cached_input);
      exec(tx, kMirror, id);
    }
    auto model = load(tx, id);
    if (!model) return model.error();
    tx.commit();
    return Updated{std::move(*model), std::move(old_name)};
  };
  auto result = co_await db_.run<Updated>(std::move(change));
  co_return detail::explain_conflict(std::move(result), duplicate_name(name), "name");
}

boost::asio::awaitable<Result<std::string>> ModelRepo::remove(std::string id) {
  auto soft_delete = [id = std::move(id)](pqxx::connection& c) -> Result<std::string> {
    pqxx::work tx(c);
    const auto rows = exec(tx, kSoftDelete, id);
    if (rows.empty()) return core::errc::not_found;
    exec(tx, kSoftDeleteRoutesOf, id);
    auto name = rows[0][0].as<std::string>();
    tx.commit();
    return name;
  };
  co_return co_await db_.run<std::string>(std::move(soft_delete));
}

boost::asio::awaitable<Result<Model>> ModelRepo::add_route(std::string model_id, core::NewRoute route) {
  auto insert = [id = std::move(model_id), r = std::move(route)](pqxx::connection& c) -> Result<Model> {
    pqxx::work tx(c);
    if (exec(tx, kLockLive, id).empty()) return core::errc::not_found;
    const auto price = price_params(r.pricing);
    if (exec(tx, kInsertRoute, id, r.provider_id, r.provider_model_name, r.priority, r.weight, price.input,
             price.output, price.cached_input)
            .empty())
      return unknown_provider();
    exec(tx, kMirror, id);
    auto out = load(tx, id);
    tx.commit();
    return out;
  };
  co_return co_await db_.run<Model>(std::move(insert));
}

boost::asio::awaitable<Result<Model>> ModelRepo::update_route(std::string model_id, std::string route_id,
                                                              core::RoutePatch patch) {
  auto change = [id = std::move(model_id), rid = std::move(route_id),
                 p = std::move(patch)](pqxx::connection& c) -> Result<Model> {
    pqxx::work tx(c);
    if (exec(tx, kLockLive, id).empty()) return core::errc::not_found;
    if (p.provider_id && exec(tx, kShareLiveProvider, *p.provider_id).empty()) return unknown_provider();
    const bool set_upstream_name = p.provider_model_name.has_value();
    const std::optional<std::string> upstream_name = set_upstream_name ? *p.provider_model_name : std::nullopt;
    const auto price = price_params(p.pricing.value_or(core::Pricing{}));
    if (exec(tx, kUpdateRoute, id, rid, p.provider_id, set_upstream_name, upstream_name, p.priority, p.weight,
             p.pricing.has_value(), price.input, price.output, price.cached_input)
            .empty())
      return core::errc::not_found;
    exec(tx, kMirror, id);
    auto out = load(tx, id);
    tx.commit();
    return out;
  };
  co_return co_await db_.run<Model>(std::move(change));
}

boost::asio::awaitable<Result<Model>> ModelRepo::remove_route(std::string model_id, std::string route_id) {
  auto change = [id = std::move(model_id), rid = std::move(route_id)](pqxx::connection& c) -> Result<Model> {
    pqxx::work tx(c);
    if (exec(tx, kLockLive, id).empty()) return core::errc::not_found;
    if (exec(tx, kCountRoutes, id)[0][0].as<long>() <= 1) {
      // Only when the route exists: deleting an unknown id stays a 404.
      bool exists = false;
      for (const auto& row : exec(tx, kRoutesOf, id)) exists = exists || row[0].as<std::string>() == rid;
      if (!exists) return core::errc::not_found;
      return core::Error{core::errc::conflict, "a model needs at least one route; delete the model instead"};
    }
    if (exec(tx, kSoftDeleteRoute, id, rid).empty()) return core::errc::not_found;
    exec(tx, kMirror, id);
    auto out = load(tx, id);
    tx.commit();
    return out;
  };
  co_return co_await db_.run<Model>(std::move(change));
}

}  // namespace storage
