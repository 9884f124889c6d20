// Db::migrate(): brings the schema up to the migrations embedded in this binary.
#include "storage/db.hpp"
#include "storage/migrations.hpp"

#include <fmt/format.h>
#include <pqxx/result>
#include <pqxx/transaction>

#include <set>
#include <string>
#include <vector>

namespace storage {
namespace {

// Arbitrary but fixed: every gateway instance takes the same transaction-scoped advisory lock, so
// concurrent start-ups apply migrations one after the other and the later ones find nothing to do.
constexpr long long kMigrationLockKey = 0x6c6c6d67770001;  // "llmgw" 0001

}  // namespace

core::Status Db::migrate() {
  detail::PooledConnection conn(conninfo_, options_.statement_timeout);
  std::vector<std::string> applied_now;
  const detail::Migration* current = nullptr;
  try {
    pqxx::work tx(conn.get(), "migrate");
    // Schema changes may legitimately outlast the per-query timeout meant for requests, and the
    // lock wait includes another instance's whole migration.
    tx.exec("SET LOCAL statement_timeout = '10min'");
    tx.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockKey));
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version int PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");

    std::set<int> applied;
    for (const auto& row : tx.exec("SELECT version FROM schema_migrations")) {
      applied.insert(row[0].as<int>());
    }
    for (const auto& migration : detail::embedded_migrations()) {
      if (applied.contains(migration.version)) continue;
      current = &migration;
      tx.exec(std::string(migration.sql));  // simple-query protocol: several statements are fine
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", migration.version,
                     std::string(migration.name));
      applied_now.push_back(fmt::format("V{:03}__{}", migration.version, migration.name));
    }
    current = nullptr;
    tx.commit();
  } catch (...) {
    core::Error error = conn.on_exception();
    if (current != nullptr) {
      detail::log_db_event("error", "migration failed",
                           fmt::format("V{:03}__{}", current->version, current->name));
    }
    return error;
  }
  for (const auto& name : applied_now) detail::log_db_event("info", "migration applied", name);
  return core::ok();
}

}  // namespace storage
