#include "storage/key_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <cmath>
#include <cstdint>

namespace storage {
namespace {

using core::Result;
using core::UserKey;
using detail::exec;
using detail::Statement;

// rpm, rpd, tpm, token_budget, budget_usd, max_parallel of table alias `t` ("" or "k.").
#define LIMIT_COLUMNS(t) t "rpm, " t "rpd, " t "tpm, " t "token_budget, " t "budget_usd::float8, " t "max_parallel"
// Columns 0-8, the limits at 9-14.
#define KEY_COLUMNS_OF(t)                                                                                  \
  t "id::text, " t "name, " t "key_prefix, " t "is_active, " LLMGW_SQL_TS(t "created_at") ", " LLMGW_SQL_TS( \
      t "updated_at") ", " LLMGW_SQL_TS(t "last_used_at") ", array_to_json(" t "allowed_models)::text, " t   \
      "default_model, " LIMIT_COLUMNS(t)
#define KEY_COLUMNS KEY_COLUMNS_OF("")
#define TEXT_ARRAY(n) "ARRAY(SELECT jsonb_array_elements_text(" n "::jsonb))"
// A per-field patch of one limit: $flag says whether to set it, $value is the new value (NULL:
// unlimited).
#define PATCH_LIMIT(col, flag, value, type) \
  " " col " = CASE WHEN " flag "::boolean THEN " value "::" type " ELSE " col " END,"

constexpr Statement kInsert{"key_insert",
                            "INSERT INTO user_keys (name, key_hash, key_prefix, allowed_models, default_model,"
                            " rpm, rpd, tpm, token_budget, budget_usd, max_parallel)"
                            " VALUES ($1, $2, $3, " TEXT_ARRAY("$4") ", $5, $6, $7, $8, $9, $10::numeric, $11)"
                            " RETURNING " KEY_COLUMNS};

constexpr Statement kList{
    "key_list", "SELECT " KEY_COLUMNS " FROM user_keys WHERE revoked_at IS NULL ORDER BY created_at, id"};

constexpr Statement kGet{"key_get",
                         "SELECT " KEY_COLUMNS " FROM user_keys WHERE id = $1 AND revoked_at IS NULL"};

constexpr Statement kUpdate{"key_update",
                            "UPDATE user_keys SET"
                            " name = coalesce($2::text, name),"
                            " is_active = coalesce($3::boolean, is_active),"
                            " allowed_models = CASE WHEN $4::text IS NULL THEN allowed_models"
                            "                  ELSE " TEXT_ARRAY("$4") " END,"
                            " default_model = CASE WHEN $5::boolean THEN $6::text ELSE default_model END,"
                            PATCH_LIMIT("rpm", "$7", "$8", "bigint")
                            PATCH_LIMIT("rpd", "$9", "$10", "bigint")
                            PATCH_LIMIT("tpm", "$11", "$12", "bigint")
                            PATCH_LIMIT("token_budget", "$13", "$14", "bigint")
                            PATCH_LIMIT("budget_usd", "$15", "$16", "numeric")
                            PATCH_LIMIT("max_parallel", "$17", "$18", "bigint")
                            " budget_reset_at = CASE WHEN $19::boolean THEN now() ELSE budget_reset_at END,"
                            " updated_at = now()"
                            " WHERE id = $1 AND revoked_at IS NULL"
                            " RETURNING " KEY_COLUMNS ", key_hash"};

// Right after kUpdate, in its transaction: a reset locks the user_keys row, then the usage row. The
// log writer locks usage rows only (in key_id order), so the two cannot deadlock.
constexpr Statement kZeroUsage{"key_zero_budget_usage",
                               "UPDATE key_budget_usage SET tokens = 0, micro_usd = 0 WHERE key_id = $1"};

// The locked sub-select hands back the hash being replaced, in the same statement.
constexpr Statement kRotate{
    "key_rotate",
    "UPDATE user_keys k SET key_hash = $2, key_prefix = $3, updated_at = now()"
    " FROM (SELECT id, key_hash FROM user_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE) old"
    " WHERE k.id = old.id"
    " RETURNING " KEY_COLUMNS_OF("k.") ", old.key_hash"};

// Revoking again keeps the first revoked_at / updated_at.
constexpr Statement kRevoke{"key_revoke",
                            "UPDATE user_keys SET is_active = false,"
                            " revoked_at = coalesce(revoked_at, now()),"
                            " updated_at = CASE WHEN revoked_at IS NULL THEN now() ELSE updated_at END"
                            " WHERE id = $1 RETURNING key_hash"};

#define RECORD_COLUMNS "id::text, name, array_to_json(allowed_models)::text, default_model, " LIMIT_COLUMNS("")

constexpr Statement kFindActive{"key_find_active",
                                "SELECT " RECORD_COLUMNS
                                " FROM user_keys WHERE key_hash = $1 AND is_active AND revoked_at IS NULL"};

constexpr Statement kActiveRecords{"key_active_records",
                                   "SELECT key_hash, " RECORD_COLUMNS
                                   " FROM user_keys WHERE is_active AND revoked_at IS NULL"};

// By hash: the hot path knows a key only by its hash (the Redis set holds nothing else).
constexpr Statement kTouch{"key_touch", "UPDATE user_keys SET last_used_at = now() WHERE key_hash = $1"};

// A live key's usage since its last reset; no usage row yet = nothing used.
constexpr Statement kBudgetUsage{"key_budget_usage",
                                 "SELECT coalesce(b.tokens, 0), coalesce(b.micro_usd, 0)"
                                 " FROM user_keys k LEFT JOIN key_budget_usage b ON b.key_id = k.id"
                                 " WHERE k.id = $1 AND k.revoked_at IS NULL"};

constexpr Statement kBudgetUsages{"key_budget_usages",
                                  "SELECT k.id::text, coalesce(b.tokens, 0), coalesce(b.micro_usd, 0)"
                                  " FROM user_keys k LEFT JOIN key_budget_usage b ON b.key_id = k.id"
                                  " WHERE k.revoked_at IS NULL"
                                  " AND (k.token_budget IS NOT NULL OR k.budget_usd IS NOT NULL)"
                                  " ORDER BY k.id"};

#undef LIMIT_COLUMNS
#undef KEY_COLUMNS_OF
#undef KEY_COLUMNS
#undef RECORD_COLUMNS
#undef TEXT_ARRAY
#undef PATCH_LIMIT

std::optional<std::int64_t> optional_int(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::int64_t>();
}

// The six LIMIT_COLUMNS from `at` on.
core::KeyLimits limits_from(const pqxx::row& r, int at) {
  core::KeyLimits l;
  l.rpm = optional_int(r[at]);
  l.rpd = optional_int(r[at + 1]);
  l.tpm = optional_int(r[at + 2]);
  l.token_budget = optional_int(r[at + 3]);
  l.budget_usd = detail::optional_double(r[at + 4]);
  l.max_parallel = optional_int(r[at + 5]);
  return l;
}

// id, name, allowed_models (JSON), default_model, then the limits, starting at column `at`.
core::KeyRecord record_from(const pqxx::row& r, int at) {
  core::KeyRecord k;
  k.id = r[at].as<std::string>();
  k.name = r[at + 1].as<std::string>();
  k.access = core::KeyAccess{detail::text_array(r[at + 2]), detail::optional_text(r[at + 3])};
  k.limits = limits_from(r, at + 4);
  return k;
}

constexpr int kHashColumn = 15;  // after KEY_COLUMNS in update / rotate

UserKey key_from(const pqxx::row& r) {
  UserKey k;
  k.id = r[0].as<std::string>();
  k.name = r[1].as<std::string>();
  k.key_prefix = r[2].as<std::string>();
  k.is_active = r[3].as<bool>();
  k.created_at = r[4].as<std::string>();
  k.updated_at = r[5].as<std::string>();
  k.last_used_at = detail::optional_text(r[6]);
  k.access.allowed_models = detail::text_array(r[7]);
  k.access.default_model = detail::optional_text(r[8]);
  k.limits = limits_from(r, 9);
  return k;
}

// What the columns' CHECKs would refuse (as an internal error): a 400 naming the field instead.
core::Status check_count(const std::optional<std::int64_t>& v, const char* name) {
  if (v && *v <= 0)
    return core::Error{core::errc::invalid_request, fmt::format("'{}' must be a positive integer.", name), name};
  return core::ok();
}

core::Status check_usd(const std::optional<double>& v) {
  if (v && !(std::isfinite(*v) && *v >= 0))
    return core::Error{core::errc::invalid_request, "'budget_usd' must be a non-negative number.", "budget_usd"};
  return core::ok();
}

core::Status check_limits(const core::KeyLimits& l) {
  for (auto s : {check_count(l.rpm, "rpm"), check_count(l.rpd, "rpd"), check_count(l.tpm, "tpm"),
                 check_count(l.token_budget, "token_budget"), check_count(l.max_parallel, "max_parallel"),
                 check_usd(l.budget_usd)})
    if (!s) return s;
  return core::ok();
}

core::Status check_patch(const core::KeyLimitsPatch& p) {
  return check_limits(p.as_limits());
}

using KeyAndHash = std::pair<UserKey, std::string>;

}  // namespace

boost::asio::awaitable<Result<UserKey>> KeyRepo::create(core::NewUserKey key, std::string key_hash,
                                                        std::string key_prefix) {
  if (auto s = check_limits(key.limits); !s) co_return std::move(s).error();
  auto insert = [k = std::move(key), hash = std::move(key_hash),
                 prefix = std::move(key_prefix)](pqxx::connection& c) -> Result<UserKey> {
    pqxx::nontransaction tx(c);
    const auto& l = k.limits;
    return key_from(exec(tx, kInsert, k.name, hash, prefix, detail::json_array(k.access.allowed_models),
                         k.access.default_model, l.rpm, l.rpd, l.tpm, l.token_budget,
                         detail::numeric_param(l.budget_usd), l.max_parallel)[0]);
  };
  auto result = co_await db_.run<UserKey>(std::move(insert));
  co_return detail::explain_conflict(std::move(result), "this key already exists", "");
}

boost::asio::awaitable<Result<std::vector<UserKey>>> KeyRepo::list() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<UserKey>> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kList);
    std::vector<UserKey> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(key_from(row));
    return out;
  };
  co_return co_await db_.read<std::vector<UserKey>>(std::move(select));
}

boost::asio::awaitable<Result<UserKey>> KeyRepo::get(std::string id) {
  auto select = [id = std::move(id)](pqxx::connection& c) -> Result<UserKey> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kGet, id);
    if (rows.empty()) return core::errc::not_found;
    return key_from(rows[0]);
  };
  co_return co_await db_.read<UserKey>(std::move(select));
}

boost::asio::awaitable<Result<KeyAndHash>> KeyRepo::update(std::string id, core::UserKeyPatch patch) {
  if (auto s = check_patch(patch.limits); !s) co_return std::move(s).error();
  auto change = [id = std::move(id), p = std::move(patch)](pqxx::connection& c) -> Result<KeyAndHash> {
    pqxx::work tx(c);
    const std::optional<std::string> allowed =
        p.allowed_models ? std::optional<std::string>(detail::json_array(*p.allowed_models)) : std::nullopt;
    const bool set_default = p.default_model.has_value();
    const std::optional<std::string> default_model = set_default ? *p.default_model : std::nullopt;
    // (whether to set it, the new value) per limit; an unset value with the flag removes the limit.
    const auto set = [](const auto& field) { return field.has_value(); };
    const auto to = [](const auto& field) { return field ? *field : std::nullopt; };
    const auto& l = p.limits;
    const std::optional<std::string> usd =
        l.budget_usd ? detail::numeric_param(*l.budget_usd) : std::optional<std::string>{};
    const auto rows = exec(tx, kUpdate, id, p.name, p.is_active, allowed, set_default, default_model,
                           set(l.rpm), to(l.rpm), set(l.rpd), to(l.rpd), set(l.tpm), to(l.tpm),
                           set(l.token_budget), to(l.token_budget), set(l.budget_usd), usd,
                           set(l.max_parallel), to(l.max_parallel), p.reset_usage);
    if (rows.empty()) return core::errc::not_found;
    if (p.reset_usage) exec(tx, kZeroUsage, id);
    tx.commit();
    return KeyAndHash{key_from(rows[0]), rows[0][kHashColumn].as<std::string>()};
  };
  co_return co_await db_.run<KeyAndHash>(std::move(change));
}

boost::asio::awaitable<Result<KeyAndHash>> KeyRepo::rotate(std::string id, std::string new_hash,
                                                           std::string new_prefix) {
  auto change = [id = std::move(id), hash = std::move(new_hash),
                 prefix = std::move(new_prefix)](pqxx::connection& c) -> Result<KeyAndHash> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kRotate, id, hash, prefix);
    if (rows.empty()) return core::errc::not_found;
    return KeyAndHash{key_from(rows[0]), rows[0][kHashColumn].as<std::string>()};
  };
  auto result = co_await db_.run<KeyAndHash>(std::move(change));
  co_return detail::explain_conflict(std::move(result), "this key already exists", "");
}

boost::asio::awaitable<Result<std::string>> KeyRepo::revoke(std::string id) {
  auto change = [id = std::move(id)](pqxx::connection& c) -> Result<std::string> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kRevoke, id);
    if (rows.empty()) return core::errc::not_found;
    return rows[0][0].as<std::string>();
  };
  co_return co_await db_.run<std::string>(std::move(change));
}

boost::asio::awaitable<Result<std::optional<core::KeyRecord>>> KeyRepo::find_active(std::string key_hash) {
  using Found = std::optional<core::KeyRecord>;
  auto select = [hash = std::move(key_hash)](pqxx::connection& c) -> Result<Found> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kFindActive, hash);
    if (rows.empty()) return Found{};
    return Found{record_from(rows[0], 0)};
  };
  co_return co_await db_.read<Found>(std::move(select));
}

boost::asio::awaitable<Result<std::vector<KeyRepo::HashAndRecord>>> KeyRepo::active_records() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<HashAndRecord>> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kActiveRecords);
    std::vector<HashAndRecord> out;
    out.reserve(rows.size());
    for (const auto& row : rows)
      out.emplace_back(row[0].as<std::string>(), record_from(row, 1));
    return out;
  };
  co_return co_await db_.read<std::vector<HashAndRecord>>(std::move(select));
}

boost::asio::awaitable<core::Status> KeyRepo::touch_last_used(std::string key_hash) {
  auto touch = [key_hash = std::move(key_hash)](pqxx::connection& c) -> core::Status {
    pqxx::nontransaction tx(c);
    exec(tx, kTouch, key_hash);
    return core::ok();
  };
  co_return co_await db_.run<core::Unit>(std::move(touch));
}

boost::asio::awaitable<Result<std::pair<std::int64_t, std::int64_t>>> KeyRepo::budget_usage(std::string key_id) {
  using Usage = std::pair<std::int64_t, std::int64_t>;
  auto select = [id = std::move(key_id)](pqxx::connection& c) -> Result<Usage> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kBudgetUsage, id);
    if (rows.empty()) return core::errc::not_found;
    return Usage{rows[0][0].as<std::int64_t>(), rows[0][1].as<std::int64_t>()};
  };
  co_return co_await db_.read<Usage>(std::move(select));
}

boost::asio::awaitable<Result<std::vector<KeyRepo::BudgetUsage>>> KeyRepo::budget_usages() {
  auto select = [](pqxx::connection& c) -> Result<std::vector<BudgetUsage>> {
    pqxx::nontransaction tx(c);
    const auto rows = exec(tx, kBudgetUsages);
    std::vector<BudgetUsage> out;
    out.reserve(rows.size());
    for (const auto& row : rows)
      out.emplace_back(row[0].as<std::string>(), row[1].as<std::int64_t>(), row[2].as<std::int64_t>());
    return out;
  };
  co_return co_await db_.read<std::vector<BudgetUsage>>(std::move(select));
}

}  // namespace storage
