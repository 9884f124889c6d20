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

#define PROVIDER_COLUMNS                                                                          \
  "id::text, name, kind, base_url, coalesce(api_key_enc, ''), coalesce(api_key_preview, ''), "    \
  "is_active, " LLMGW_SQL_TS("created_at") ", " LLMGW_SQL_TS("updated_at") ","                    \
  " coalesce(extra_headers_enc, ''), array_to_json(extra_header_names)::text, api_version, rpm, rpd"
#define TEXT_ARRAY(n) "ARRAY(SELECT jsonb_array_elements_text(" n "::jsonb))"

constexpr Statement kInsert{"provider_insert",
                            "INSERT INTO providers (name, kind, base_url, api_key_enc, api_key_preview,"
                            " extra_headers_enc, extra_header_names, api_version, rpm, rpd)"
                            " VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''), nullif($6, ''), " TEXT_ARRAY("$7")
                            ", $8, $9, $10) RETURNING " PROVIDER_COLUMNS};

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
    " extra_headers_enc = CASE WHEN $8::text IS NULL THEN extra_headers_enc ELSE nullif($8::text, '') END,"
    " extra_header_names = CASE WHEN $9::text IS NULL THEN extra_header_names ELSE " TEXT_ARRAY("$9") " END,"
    " api_version = CASE WHEN $10::boolean THEN $11::text ELSE api_version END,"
    " rpm = CASE WHEN $12::boolean THEN $13::bigint ELSE rpm END,"
    " rpd = CASE WHEN $14::boolean THEN $15::bigint ELSE rpd END,"
    " updated_at = now()"
    " WHERE id = $1 AND deleted_at IS NULL"
    " RETURNING " PROVIDER_COLUMNS};

// Row lock first: model create / update take FOR SHARE on the provider, so no model can attach to
// it between the count below and the soft delete.
constexpr Statement kLockLive{"provider_lock_live",
                              "SELECT 1 FROM providers WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"};

// Live models with a live route on this provider, and whether they have a route on another one.
constexpr Statement kLiveModels{
    "provider_live_models",
    "SELECT m.id::text, m.name, EXISTS (SELECT 1 FROM model_routes o JOIN providers op ON op.id = o.provider_id"
    "   WHERE o.model_id = m.id AND o.deleted_at IS NULL AND o.provider_id <> $1 AND op.deleted_at IS NULL)"
    " FROM models m WHERE m.deleted_at IS NULL AND EXISTS (SELECT 1 FROM model_routes r"
    "   WHERE r.model_id = m.id AND r.provider_id = $1 AND r.deleted_at IS NULL)"
    " ORDER BY m.name FOR UPDATE OF m"};

// A model that keeps another route loses this provider's routes; one that would have none left
// keeps its route but is deactivated (it can be given a new route and reactivated).
constexpr Statement kDropRoutes{"provider_drop_routes",
                                "UPDATE model_routes SET deleted_at = now(), updated_at = now()"
                                " WHERE model_id = $1 AND provider_id = $2 AND deleted_at IS NULL"};
constexpr Statement kMirror{"provider_mirror_first_route",
                            "UPDATE models m SET provider_id = r.provider_id, provider_model_name = r.provider_model_name"
                            " FROM (SELECT provider_id, provider_model_name FROM model_routes"
                            "       WHERE model_id = $1 AND deleted_at IS NULL ORDER BY priority, created_at, id"
                            "       LIMIT 1) r WHERE m.id = $1"};
constexpr Statement kDeactivateModel{"provider_deactivate_model",
                                     "UPDATE models SET is_active = false, updated_at = now() WHERE id = $1"};

constexpr Statement kSoftDelete{
    "provider_soft_delete",
    "UPDATE providers SET deleted_at = now(), is_active = false, updated_at = now() WHERE id = $1"};

constexpr Statement kSecret{"provider_secret",
                            "SELECT coalesce(api_key_enc, ''), coalesce(extra_headers_enc, '') FROM providers"
                            " WHERE id = $1 AND deleted_at IS NULL AND is_active"};

#undef PROVIDER_COLUMNS
#undef TEXT_ARRAY

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
  p.extra_headers_enc = r[9].as<std::string>();
  p.extra_header_names = detail::text_array(r[10]);
  p.api_version = detail::optional_text(r[11]);
  if (!r[12].is_null()) p.limits.rpm = r[12].as<std::int64_t>();
  if (!r[13].is_null()) p.limits.rpd = r[13].as<std::int64_t>();
  return p;
}

// What the columns' CHECKs would refuse (as an internal error): a 400 naming the field instead.
core::Status check_limit(const std::optional<std::int64_t>& v, const char* name) {
  if (v && *v <= 0)
    return core::Error{core::errc::invalid_request, fmt::format("'{}' must be a positive integer.", name), name};
  return core::ok();
}

std::string duplicate_name(const std::string& name) {
  return fmt::format("a provider named '{}' already exists", name);
}

}  // namespace

boost::asio::awaitable<Result<Provider>> ProviderRepo::create(core::NewProvider provider) {
  if (auto s = check_limit(provider.limits.rpm, "rpm"); !s) co_return std::move(s).error();
  if (auto s = check_limit(provider.limits.rpd, "rpd"); !s) co_return std::move(s).error();
  const std::string name = provider.name;
  auto insert = [p = std::move(provider)](pqxx::connection& c) -> Result<Provider> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kInsert, p.name, p.kind, p.base_url, p.api_key_enc, p.api_key_preview,
                           p.extra_headers_enc, detail::json_array(p.extra_header_names), p.api_version,
                           p.limits.rpm, p.limits.rpd);
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
  if (auto s = check_limit(patch.rpm.value_or(std::nullopt), "rpm"); !s) co_return std::move(s).error();
  if (auto s = check_limit(patch.rpd.value_or(std::nullopt), "rpd"); !s) co_return std::move(s).error();
  const std::string name = patch.name.value_or("");
  auto change = [id = std::move(id), p = std::move(patch)](pqxx::connection& c) -> Result<Provider> {
    pqxx::nontransaction tx(c);
    const std::optional<std::string> names =
        p.extra_header_names ? std::optional<std::string>(detail::json_array(*p.extra_header_names)) : std::nullopt;
    const bool set_version = p.api_version.has_value();
    const std::optional<std::string> version = set_version ? *p.api_version : std::nullopt;
    const auto rows = exec(tx, kUpdate, id, p.name, p.kind, p.base_url, p.api_key_enc, p.api_key_preview,
                           p.is_active, p.extra_headers_enc, names, set_version, version, p.rpm.has_value(),
                           p.rpm.value_or(std::nullopt), p.rpd.has_value(), p.rpd.value_or(std::nullopt));
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
    const auto using_it = exec(tx, kLiveModels, id);
    for (const auto& row : using_it) models.push_back(row[1].as<std::string>());
    if (!models.empty()) {
      if (!force) {
        return core::Error{core::errc::conflict,
                           fmt::format("provider is used by {} model(s)", models.size())};
      }
      for (const auto& row : using_it) {
        const auto model_id = row[0].as<std::string>();
        if (row[2].as<bool>()) {
          exec(tx, kDropRoutes, model_id, id);
          exec(tx, kMirror, model_id);
        } else {
          exec(tx, kDeactivateModel, model_id);
        }
      }
    }
    exec(tx, kSoftDelete, id);
    tx.commit();
    return models;
  };
  co_return co_await db_.run<std::vector<std::string>>(std::move(soft_delete));
}

boost::asio::awaitable<Result<ProviderRepo::Sealed>> ProviderRepo::secret(std::string id) {
  auto select = [id = std::move(id)](pqxx::connection& c) -> Result<Sealed> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kSecret, id);
    if (rows.empty()) return core::errc::not_found;
    return Sealed{rows[0][0].as<std::string>(), rows[0][1].as<std::string>()};
  };
  co_return co_await db_.read<Sealed>(std::move(select));
}

}  // namespace storage
