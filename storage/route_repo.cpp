#include "storage/route_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <pqxx/nontransaction>

namespace storage {
namespace {

using core::Result;
using core::Route;
using detail::exec;
using detail::Statement;

#define ROUTE_SELECT                                           \
  "SELECT m.id::text, m.name, p.id::text, p.kind, p.base_url," \
  " coalesce(m.provider_model_name, m.name)"                   \
  " FROM models m JOIN providers p ON p.id = m.provider_id"    \
  " WHERE m.deleted_at IS NULL AND m.is_active AND p.deleted_at IS NULL AND p.is_active"

// Served by the partial unique index on models(name).
constexpr Statement kFind{"route_find", ROUTE_SELECT " AND m.name = $1"};
constexpr Statement kAll{"route_all", ROUTE_SELECT " ORDER BY m.name"};

#undef ROUTE_SELECT

Route route_from(const pqxx::row& r) {
  Route route;
  route.model_id = r[0].as<std::string>();
  route.model_name = r[1].as<std::string>();
  route.provider_id = r[2].as<std::string>();
  route.provider_kind = r[3].as<std::string>();
  route.base_url = r[4].as<std::string>();
  route.upstream_model = r[5].as<std::string>();
  return route;
}

}  // namespace

boost::asio::awaitable<Result<std::optional<Route>>> RouteRepo::find(std::string model_name) {
  using Found = std::optional<Route>;
  auto select = [name = std::move(model_name)](pqxx::connection& c) -> Result<Found> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kFind, name);
    if (rows.empty()) return Found{};
    return Found{route_from(rows[0])};
  };
  co_return co_await db_.read<Found>(std::move(select));
}

boost::asio::awaitable<Result<std::vector<Route>>> RouteRepo::all() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<Route>> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kAll);
    std::vector<Route> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(route_from(row));
    return out;
  };
  co_return co_await db_.read<std::vector<Route>>(std::move(select));
}

}  // namespace storage
