#pragma once
// A batch of request log rows in the forms PostgreSQL takes cheapest (not part of the storage API):
// the rows as COPY text, and the totals they add to usage_daily and key_budget_usage, summed here
// so that PostgreSQL upserts one row per key and day instead of grouping the batch itself.
//
// Every value is cleaned and clamped here, once, for both: a value PostgreSQL would refuse (a NUL,
// invalid UTF-8, a number beyond its column) would fail the whole batch, and the totals must count
// exactly the values the log holds. Costs reach both as the same decimal text (the shortest form
// that reads back as the same double), so usage_daily.cost is exactly the numeric sum of the rows'.
#include "core/domain.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace storage::detail {

// request_logs' columns in the order of the COPY text's fields.
extern const std::vector<std::string> kLogCopyColumns;

// The UTC day (days since 1970-01-01) a row is logged under: its partition and its usage_daily day.
std::int64_t log_day(const core::RequestLog& row) noexcept;

// A key's id as the log writes it (lowercase, so that one key is one group), or none for a row that
// has none, or a malformed one (which would fail the uuid cast, and the batch). Held inline.
struct LogKey {
  std::array<char, 36> text{};
  bool present = false;
  std::string_view view() const { return present ? std::string_view(text.data(), text.size()) : ""; }
};

// A row of a batch with its key as the log writes it, worked out once for the COPY text, the totals
// and the budget lookup.
struct LogRow {
  explicit LogRow(const core::RequestLog& r) noexcept;
  const core::RequestLog* row;
  LogKey key;
};

// Appends one row as a COPY text line, without the newline.
void append_copy_row(std::string& out, const LogRow& row);

// The parameters of the statement that adds a batch to usage_daily and key_budget_usage (see
// log_writer.cpp): PostgreSQL array literals, since libpqxx 6.4 has no array parameters.
struct UsageParams {
  // usage_daily, one element per (key, day), in (key, day) order.
  std::string keys, days, requests, errors, prompt, completion, cached, total;
  // The costs of those groups' rows, each tagged with its group's 1-based position.
  std::string costs, cost_groups;
  // key_budget_usage, one element per key, in key order: the rows created at or after its reset.
  std::string budget_keys, budget_tokens, budget_costs, budget_cost_groups;
  bool empty = true;  // no row has a key: nothing to add
};

// budget_reset_at (µs since the epoch) of the batch's keys that exist in user_keys, by LogRow::key; a
// key missing there adds nothing to key_budget_usage.
using BudgetResets = std::map<std::string, std::int64_t, std::less<>>;

UsageParams usage_params(const std::vector<LogRow>& rows, const BudgetResets& budget_resets);

// The batch's distinct keys as a uuid[] literal, for looking up their budget_reset_at; "" for none.
std::string key_array(const std::vector<LogRow>& rows);

}  // namespace storage::detail
