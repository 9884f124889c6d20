#include "storage/provider_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

namespace storage {
namespace {

using core::Provider;
using core::Result;
using detail::exec;
using detail::Statement;

#define PROVIDER_COLUMNS                                                                       \
  "id::text, name, kind, base_url, coalesce(api_key_enc, ''), coalesce(api_key_preview, ''), " \
  "is_active, " LLMGW_SQL_TS("created_at") ", " LLMGW_SQL_TS("updated_at")

constexpr Statement kInsert{"provider_insert",
                            "INSERT INTO providers (name, kind, base_url, api_key_enc, api_key_preview)"
                            " VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''))"
                            " RETURNING " PROVIDER_COLUMNS};

constexpr Statement kList{"provider_list",
                          "SELECT " PROVIDER_COLUMNS
                          " FROM providers WHERE deleted_at IS NULL ORDER BY created_at, id"};

constexpr Statement kGet{"provider_get",
                         "SELECT " PROVIDER_COLUMNS " FROM providers WHERE id = $1 AND deleted_at IS NULL"};

// NULL parameter = leave the column alone; '' for a key = remove it.
constexpr Statement kUpdate{
    "provider_update",
    "UPDATE providers SET"
    " name = coalesce($2::text, name),"
    " kind = coalesce($3::text, kind),"
    " base_url = coalesce($4::text, base_url),"
    " api_key_enc = CASE WHEN $5::text IS NULL THEN api_key_enc ELSE nullif($5::text, '') END,"
    " api_key_preview = CASE WHEN $6::text IS NULL THEN api_key_preview ELSE nullif($6::text, '') END,"
    " is_active = coalesce($7::boolean, is_active),"
    " updated_at = now()"
    " WHERE id = $1 AND deleted_at IS NULL"
    " RETURNING " PROVIDER_COLUMNS};

// Row lock first: model create / update take FOR SHARE on the provider, so no model can attach to
// it between the count below and the soft delete.
constexpr Statement kLockLive{"provider_lock_live",
                              "SELECT 1 FROM providers WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"};

constexpr Statement kLiveModels{
    "provider_live_models",
    "SELECT name FROM models WHERE provider_id = $1 AND deleted_at IS NULL ORDER BY name FOR UPDATE"};

constexpr Statement kDeactivateModels{"provider_deactivate_models",
                                      "UPDATE models SET is_active = false, updated_at = now()"
                                      " WHERE provider_id = $1 AND deleted_at IS NULL AND is_active"};

constexpr Statement kSoftDelete{
    "provider_soft_delete",
    "UPDATE providers SET deleted_at = now(), is_active = false, updated_at = now() WHERE id = $1"};

constexpr Statement kSecret{"provider_secret",
                            "SELECT coalesce(api_key_enc, '') FROM providers"
                            " WHERE id = $1 AND deleted_at IS NULL AND is_active"};

#undef PROVIDER_COLUMNS

Provider provider_from(const pqxx::row& r) {
  Provider p;
  p.id = r[0].as<std::string>();
  p.name = r[1].as<std::string>();
  p.kind = r[2].as<std::string>();
  p.base_url = r[3].as<std::string>();
  p.api_key_enc = r[4].as<std::string>();
  p.api_key_preview = r[5].as<std::string>();
  p.is_active = r[6].as<bool>();
  p.created_at = r[7].as<std::string>();
  p.updated_at = r[8].as<std::string>();
  return p;
}

std::string duplicate_name(const std::string& name) {
  return fmt::format("a provider named '{}' already exists", name);
}

}  // namespace

boost::asio::awaitable<Result<Provider>> ProviderRepo::create(core::NewProvider provider) {
  const std::string name = provider.name;
  auto insert = [p = std::move(provider)](pqxx::connection& c) -> Result<Provider> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kInsert, p.name, p.kind, p.base_url, p.api_key_enc, p.api_key_preview);
    return provider_from(rows[0]);
  };
  auto result = co_await db_.run<Provider>(std::move(insert));
  co_return detail::explain_conflict(std::move(result), duplicate_name(name), "name");
}

boost::asio::awaitable<Result<std::vector<Provider>>> ProviderRepo::list() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<Provider>> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kList);
    std::vector<Provider> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(provider_from(row));
    return out;
  };
  co_return co_await db_.read<std::vector<Provider>>(std::move(select));
}

boost::asio::awaitable<Result<Provider>> ProviderRepo::get(std::string id) {
  auto select = [id = std::move(id)](pqxx::connection& c) -> Result<Provider> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kGet, id);
    if (rows.empty()) return core::errc::not_found;
    return provider_from(rows[0]);
  };
  co_return co_await db_.read<Provider>(std::move(select));
}

boost::asio::awaitable<Result<Provider>> ProviderRepo::update(std::string id, core::ProviderPatch patch) {
  const std::string name = patch.name.value_or("");
  auto change = [id = std::move(id), p = std::move(patch)](pqxx::connection& c) -> Result<Provider> {
    pqxx::nontransaction tx(c);
    const auto rows =
        exec(tx, kUpdate, id, p.name, p.kind, p.base_url, p.api_key_enc, p.api_key_preview, p.is_active);
    if (rows.empty()) return core::errc::not_found;
    return provider_from(rows[0]);
  };
  auto result = co_await db_.run<Provider>(std::move(change));
  co_return detail::explain_conflict(std::move(result), duplicate_name(name), "name");
}

boost::asio::awaitable<Result<std::vector<std::string>>> ProviderRepo::remove(std::string id, bool force) {
  auto soft_delete = [id = std::move(id), force](pqxx::connection& c) -> Result<std::vector<std::string>> {
    pqxx::work tx(c);
    if (exec(tx, kLockLive, id).empty()) return core::errc::not_found;
    std::vector<std::string> models;
    for (const auto& row : exec(tx, kLiveModels, id)) models.push_back(row[0].as<std::string>());
    if (!models.empty()) {
      if (!force) {
        return core::Error{core::errc::conflict,
                           fmt::format("provider is used by {} model(s)", models.size())};
      }
      exec(tx, kDeactivateModels, id);
    }
    exec(tx, kSoftDelete, id);
    tx.commit();
    return models;
  };
  co_return co_await db_.run<std::vector<std::string>>(std::move(soft_delete));
}

boost::asio::awaitable<Result<std::string>> ProviderRepo::secret(std::string id) {
  auto select = [id = std::move(id)](pqxx::connection& c) -> Result<std::string> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kSecret, id);
    if (rows.empty()) return core::errc::not_found;
    return rows[0][0].as<std::string>();
  };
  co_return co_await db_.read<std::string>(std::move(select));
}

}  // namespace storage
