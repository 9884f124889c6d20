#include "storage/model_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

namespace storage {
namespace {

using core::Model;
using core::Result;
using detail::exec;
using detail::Statement;

#define MODEL_COLUMNS                                                                 \
  "id::text, name, provider_id::text, provider_model_name, is_active, " LLMGW_SQL_TS( \
      "created_at") ", " LLMGW_SQL_TS("updated_at")

// FOR SHARE waits for a concurrent provider delete (which holds FOR UPDATE) and then re-checks
// deleted_at, so a model can never attach to a provider being deleted. No row -> bad provider_id.
constexpr Statement kInsert{"model_insert",
                            "INSERT INTO models (name, provider_id, provider_model_name)"
                            " SELECT $1, p.id, $3 FROM providers p"
                            " WHERE p.id = $2::uuid AND p.deleted_at IS NULL FOR SHARE"
                            " RETURNING " MODEL_COLUMNS};

constexpr Statement kList{
    "model_list", "SELECT " MODEL_COLUMNS " FROM models WHERE deleted_at IS NULL ORDER BY created_at, id"};

constexpr Statement kGet{"model_get",
                         "SELECT " MODEL_COLUMNS " FROM models WHERE id = $1 AND deleted_at IS NULL"};

constexpr Statement kLockLive{"model_lock_live",
                              "SELECT name FROM models WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"};

constexpr Statement kShareLiveProvider{
    "model_share_live_provider", "SELECT 1 FROM providers WHERE id = $1 AND deleted_at IS NULL FOR SHARE"};

// NULL = leave alone; $4 says whether provider_model_name is being set (possibly to NULL).
constexpr Statement kUpdate{
    "model_update",
    "UPDATE models SET"
    " name = coalesce($2::text, name),"
    " provider_id = coalesce($3::uuid, provider_id),"
    " provider_model_name = CASE WHEN $4::boolean THEN $5::text ELSE provider_model_name END,"
    " is_active = coalesce($6::boolean, is_active),"
    " updated_at = now()"
    " WHERE id = $1"
    " RETURNING " MODEL_COLUMNS};

constexpr Statement kSoftDelete{"model_soft_delete",
                                "UPDATE models SET deleted_at = now(), is_active = false, updated_at = now()"
                                " WHERE id = $1 AND deleted_at IS NULL RETURNING name"};

#undef MODEL_COLUMNS

Model model_from(const pqxx::row& r) {
  Model m;
  m.id = r[0].as<std::string>();
  m.name = r[1].as<std::string>();
  m.provider_id = r[2].as<std::string>();
  m.provider_model_name = detail::optional_text(r[3]);
  m.is_active = r[4].as<bool>();
  m.created_at = r[5].as<std::string>();
  m.updated_at = r[6].as<std::string>();
  return m;
}

core::Error unknown_provider() {
  return core::Error{core::errc::invalid_request, "provider_id does not exist", "provider_id"};
}

std::string duplicate_name(const std::string& name) {
  return fmt::format("a model named '{}' already exists", name);
}

}  // namespace

boost::asio::awaitable<Result<Model>> ModelRepo::create(core::NewModel model) {
  const std::string name = model.name;
  auto insert = [m = std::move(model)](pqxx::connection& c) -> Result<Model> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kInsert, m.name, m.provider_id, m.provider_model_name);
    if (rows.empty()) return unknown_provider();
    return model_from(rows[0]);
  };
  auto result = co_await db_.run<Model>(std::move(insert));
  co_return detail::explain_conflict(std::move(result), duplicate_name(name), "name");
}

boost::asio::awaitable<Result<std::vector<Model>>> ModelRepo::list() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<Model>> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kList);
    std::vector<Model> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(model_from(row));
    return out;
  };
  co_return co_await db_.read<std::vector<Model>>(std::move(select));
}

boost::asio::awaitable<Result<Model>> ModelRepo::get(std::string id) {
  auto select = [id = std::move(id)](pqxx::connection& c) -> Result<Model> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kGet, id);
    if (rows.empty()) return core::errc::not_found;
    return model_from(rows[0]);
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
    if (p.provider_id && exec(tx, kShareLiveProvider, *p.provider_id).empty()) {
      return unknown_provider();
    }
    const bool set_upstream_name = p.provider_model_name.has_value();
    const std::optional<std::string> upstream_name =
        set_upstream_name ? *p.provider_model_name : std::nullopt;
    const auto rows =
        exec(tx, kUpdate, id, p.name, p.provider_id, set_upstream_name, upstream_name, p.is_active);
    Updated out{model_from(rows[0]), std::move(old_name)};
    tx.commit();
    return out;
  };
  auto result = co_await db_.run<Updated>(std::move(change));
  co_return detail::explain_conflict(std::move(result), duplicate_name(name), "name");
}

boost::asio::awaitable<Result<std::string>> ModelRepo::remove(std::string id) {
  auto soft_delete = [id = std::move(id)](pqxx::connection& c) -> Result<std::string> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kSoftDelete, id);
    if (rows.empty()) return core::errc::not_found;
    return rows[0][0].as<std::string>();
  };
  co_return co_await db_.run<std::string>(std::move(soft_delete));
}

}  // namespace storage
