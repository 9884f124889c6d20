#pragma once
// Helpers shared by the repository sources (not part of the storage API).
#include "core/domain.hpp"
#include "core/result.hpp"

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/transaction_base>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

inline std::optional<double> optional_double(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<double>();
}

// Prices travel as text in the shortest form that reads back as the same double ("0.1", not
// "0.1000000000000000055"), so the numeric column holds what the admin typed. Select them back as
// "col::float8".
std::optional<std::string> numeric_param(const std::optional<double>& v);
// Three columns from `at` on: input, output, cached_input prices.
core::Pricing pricing_from(const pqxx::row& r, int at);

// Microseconds since the Unix epoch as timestamptz text, exact: 2024-05-01T12:00:00.123456Z. Years
// 0-9999 (callers clamp). Appended without a formatting library: the request log writes one per row.
void append_rfc3339_us(std::string& out, std::int64_t us);
std::string rfc3339_us(std::int64_t us);
// A UTC calendar day as a date literal, YYYY-MM-DD.
std::string iso_date(std::chrono::sys_days day);

// A UUID's text form (8-4-4-4-12 hex digits): a value PostgreSQL's uuid input accepts.
bool is_uuid(std::string_view s) noexcept;

// Db reports a unique violation as a bare errc::conflict; give it a message the client can act on.
template <class T>
core::Result<T> explain_conflict(core::Result<T> result, std::string message, std::string param) {
  if (result || result.error().code != core::errc::conflict || !result.error().message.empty()) {
    return result;
  }
  return core::Error{core::errc::conflict, std::move(message), std::move(param)};
}

}  // namespace storage::detail
