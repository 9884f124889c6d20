#include "storage/key_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <pqxx/nontransaction>

namespace storage {
namespace {

using core::Result;
using core::UserKey;
using detail::exec;
using detail::Statement;

#define KEY_COLUMNS                                                                       \
  "id::text, name, key_prefix, is_active, " LLMGW_SQL_TS("created_at") ", " LLMGW_SQL_TS( \
      "updated_at") ", " LLMGW_SQL_TS("last_used_at") ", array_to_json(allowed_models)::text, default_model"
#define TEXT_ARRAY(n) "ARRAY(SELECT jsonb_array_elements_text(" n "::jsonb))"

constexpr Statement kInsert{"key_insert",
                            "INSERT INTO user_keys (name, key_hash, key_prefix, allowed_models, default_model)"
                            " VALUES ($1, $2, $3, " TEXT_ARRAY("$4") ", $5)"
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
                            " updated_at = now()"
                            " WHERE id = $1 AND revoked_at IS NULL"
                            " RETURNING " KEY_COLUMNS ", key_hash"};

// The locked sub-select hands back the hash being replaced, in the same statement.
constexpr Statement kRotate{
    "key_rotate",
    "UPDATE user_keys k SET key_hash = $2, key_prefix = $3, updated_at = now()"
    " FROM (SELECT id, key_hash FROM user_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE) old"
    " WHERE k.id = old.id"
    " RETURNING k.id::text, k.name, k.key_prefix, k.is_active, " LLMGW_SQL_TS("k.created_at") ", "
    LLMGW_SQL_TS("k.updated_at") ", " LLMGW_SQL_TS("k.last_used_at") ","
    " array_to_json(k.allowed_models)::text, k.default_model, old.key_hash"};

// Revoking again keeps the first revoked_at / updated_at.
constexpr Statement kRevoke{"key_revoke",
                            "UPDATE user_keys SET is_active = false,"
                            " revoked_at = coalesce(revoked_at, now()),"
                            " updated_at = CASE WHEN revoked_at IS NULL THEN now() ELSE updated_at END"
                            " WHERE id = $1 RETURNING key_hash"};

constexpr Statement kFindActive{"key_find_active",
                                "SELECT id::text, name, array_to_json(allowed_models)::text, default_model"
                                " FROM user_keys WHERE key_hash = $1 AND is_active AND revoked_at IS NULL"};

constexpr Statement kActiveRecords{"key_active_records",
                                   "SELECT key_hash, id::text, name, array_to_json(allowed_models)::text, default_model"
                                   " FROM user_keys WHERE is_active AND revoked_at IS NULL"};

// By hash: the hot path knows a key only by its hash (the Redis set holds nothing else).
constexpr Statement kTouch{"key_touch", "UPDATE user_keys SET last_used_at = now() WHERE key_hash = $1"};

#undef KEY_COLUMNS
#undef TEXT_ARRAY

// id, name, allowed_models (JSON), default_model starting at column `at`.
core::KeyRecord record_from(const pqxx::row& r, int at) {
  return core::KeyRecord{r[at].as<std::string>(), r[at + 1].as<std::string>(),
                         core::KeyAccess{detail::text_array(r[at + 2]), detail::optional_text(r[at + 3])}};
}

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
  return k;
}

using KeyAndHash = std::pair<UserKey, std::string>;

}  // namespace

boost::asio::awaitable<Result<UserKey>> KeyRepo::create(core::NewUserKey key, std::string key_hash,
                                                        std::string key_prefix) {
  auto insert = [k = std::move(key), hash = std::move(key_hash),
                 prefix = std::move(key_prefix)](pqxx::connection& c) -> Result<UserKey> {
    pqxx::nontransaction tx(c);
    return key_from(exec(tx, kInsert, k.name, hash, prefix, detail::json_array(k.access.allowed_models),
                         k.access.default_model)[0]);
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
  auto change = [id = std::move(id), p = std::move(patch)](pqxx::connection& c) -> Result<KeyAndHash> {
    pqxx::nontransaction tx(c);
    const std::optional<std::string> allowed =
        p.allowed_models ? std::optional<std::string>(detail::json_array(*p.allowed_models)) : std::nullopt;
    const bool set_default = p.default_model.has_value();
    const std::optional<std::string> default_model = set_default ? *p.default_model : std::nullopt;
    const auto rows = exec(tx, kUpdate, id, p.name, p.is_active, allowed, set_default, default_model);
    if (rows.empty()) return core::errc::not_found;
    return KeyAndHash{key_from(rows[0]), rows[0][9].as<std::string>()};
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
    return KeyAndHash{key_from(rows[0]), rows[0][9].as<std::string>()};
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

}  // namespace storage
