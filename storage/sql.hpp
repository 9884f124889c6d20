#pragma once
// Helpers shared by the repository sources (not part of the storage API).
#include "core/result.hpp"

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/transaction_base>

#include <optional>
#include <vector>
#include <string>
#include <utility>

// A timestamptz column as RFC 3339 UTC with microseconds: 2024-05-01T12:00:00.123456Z. A macro so
// the statements stay compile-time string literals.
#define LLMGW_SQL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

namespace storage::detail {

struct Statement {
  const char* name;  // unique across the storage library
  const char* sql;
};

// Runs a named prepared statement. Defining it on the connection is a cheap no-op after the first
// time, and libpqxx only sends PREPARE on first execution, so every pooled connection prepares each
// statement lazily, once; a reconnected connection starts afresh.
template <class... Args>
pqxx::result exec(pqxx::transaction_base& tx, const Statement& statement, Args&&... args) {
  tx.conn().prepare(statement.name, statement.sql);
  return tx.exec_prepared(statement.name, std::forward<Args>(args)...);
}

// text[] values travel as JSON text (libpqxx 6.4 has no array parameters): pass json_array(v) to
// "ARRAY(SELECT jsonb_array_elements_text($n::jsonb))", select "array_to_json(col)::text".
std::string json_array(const std::vector<std::string>& v);
std::vector<std::string> text_array(const pqxx::field& json);

inline std::optional<std::string> optional_text(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

// Db reports a unique violation as a bare errc::conflict; give it a message the client can act on.
template <class T>
core::Result<T> explain_conflict(core::Result<T> result, std::string message, std::string param) {
  if (result || result.error().code != core::errc::conflict || !result.error().message.empty()) {
    return result;
  }
  return core::Error{core::errc::conflict, std::move(message), std::move(param)};
}

}  // namespace storage::detail
