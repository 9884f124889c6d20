#include "storage/route_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <pqxx/nontransaction>

namespace storage {
namespace {

using core::ModelRoutes;
using core::Result;
using detail::exec;
using detail::Statement;

#define ROUTES_SELECT                                                                                  \
  "SELECT m.id::text, m.name, m.strategy, r.id::text, p.id::text, p.name, p.kind, p.base_url,"         \
  " coalesce(r.provider_model_name, m.name), coalesce(p.api_version, ''), r.priority, r.weight,"       \
  " coalesce(r.price_input, m.price_input)::float8, coalesce(r.price_output, m.price_output)::float8," \
  " coalesce(r.price_cached_input, m.price_cached_input)::float8, p.rpm, p.rpd"                        \
  " FROM models m JOIN model_routes r ON r.model_id = m.id JOIN providers p ON p.id = r.provider_id"   \
  " WHERE m.deleted_at IS NULL AND m.is_active AND r.deleted_at IS NULL"                               \
  " AND p.deleted_at IS NULL AND p.is_active"

// Served by the partial unique index on models(name) and model_routes(model_id, priority, ...).
constexpr Statement kFind{"routes_find", ROUTES_SELECT " AND m.name = $1 ORDER BY r.priority, r.created_at, r.id"};
constexpr Statement kAll{"routes_all", ROUTES_SELECT " ORDER BY m.name, r.priority, r.created_at, r.id"};

#undef ROUTES_SELECT

// Rows of one or more models, grouped in the order they come.
std::vector<ModelRoutes> group(const pqxx::result& rows) {
  std::vector<ModelRoutes> out;
  for (const auto& r : rows) {
    if (out.empty() || out.back().model_id != r[0].c_str()) {
      ModelRoutes m;
      m.model_id = r[0].as<std::string>();
      m.model_name = r[1].as<std::string>();
      m.strategy = core::parse_strategy(r[2].as<std::string>()).value_or(core::Strategy::priority);
      out.push_back(std::move(m));
    }
    core::RouteTarget t;
    t.route_id = r[3].as<std::string>();
    t.provider_id = r[4].as<std::string>();
    t.provider_name = r[5].as<std::string>();
    t.provider_kind = r[6].as<std::string>();
    t.base_url = r[7].as<std::string>();
    t.upstream_model = r[8].as<std::string>();
    t.api_version = r[9].as<std::string>();
    t.priority = r[10].as<int>();
    t.weight = r[11].as<int>();
    t.pricing = detail::pricing_from(r, 12);  // field by field: the route's price, else the model's
    if (!r[15].is_null()) t.provider_limits.rpm = r[15].as<std::int64_t>();
    if (!r[16].is_null()) t.provider_limits.rpd = r[16].as<std::int64_t>();
    out.back().routes.push_back(std::move(t));
  }
  return out;
}

}  // namespace

boost::asio::awaitable<Result<std::optional<ModelRoutes>>> RouteRepo::find(std::string model_name) {
  using Found = std::optional<ModelRoutes>;
  auto select = [name = std::move(model_name)](pqxx::connection& c) -> Result<Found> {
    pqxx::nontransaction tx(c);
    auto models = group(exec(tx, kFind, name));
    if (models.empty()) return Found{};
    return Found{std::move(models.front())};
  };
  co_return co_await db_.read<Found>(std::move(select));
}

boost::asio::awaitable<Result<std::vector<ModelRoutes>>> RouteRepo::all() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<ModelRoutes>> {
    pqxx::nontransaction tx(c);
    return group(exec(tx, kAll));
  };
  co_return co_await db_.read<std::vector<ModelRoutes>>(std::move(select));
}

}  // namespace storage
