#include "storage/log_repo.hpp"

#include "storage/db.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <pqxx/transaction>

#include <algorithm>
#include <charconv>
#include <limits>

namespace storage {
namespace {

using core::Result;
using detail::exec;
using detail::Statement;

// Every filter is optional ($n IS NULL switches it off). The statements are prepared once, so
// each read plans them with its actual values (SET LOCAL plan_cache_mode below): a generic plan
// could neither use the index of the filter that is set nor prune partitions by the time range.
#define LOG_FILTERS                                                                           \
  " WHERE ($1::uuid IS NULL OR key_id = $1::uuid) AND ($2::text IS NULL OR model = $2::text)" \
  " AND ($3::text IS NULL OR provider = $3::text)"                                            \
  " AND ($4::integer IS NULL OR status BETWEEN $4::integer AND $5::integer)"                  \
  " AND ($6::timestamptz IS NULL OR created_at >= $6::timestamptz)"                           \
  " AND ($7::timestamptz IS NULL OR created_at < $7::timestamptz)"

constexpr Statement kLogs{
    "log_page",
    "SELECT id, " LLMGW_SQL_TS("created_at") ", (extract(epoch FROM created_at) * 1000000)::bigint,"
    " request_id, upstream_request_id, key_id::text, model, provider, upstream_model, status, error_code,"
    " prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, total_tokens, cost::float8,"
    " latency_ms, ttft_ms, is_stream, attempts, client_addr"
    " FROM request_logs" LOG_FILTERS " ORDER BY created_at DESC, id DESC LIMIT $8 OFFSET $9"};

constexpr Statement kLogsCount{"log_count", "SELECT count(*) FROM request_logs" LOG_FILTERS};

// One statement per grouping (the group expression cannot be a parameter), same columns.
#define STATS_SELECT(group)                                                                 \
  "SELECT " group                                                                           \
  ", count(*), count(*) FILTER (WHERE status >= 400 OR error_code IS NOT NULL),"            \
  " sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost)::float8,"      \
  " percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),"                               \
  " percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),"                              \
  " percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms),"                                  \
  " percentile_cont(0.95) WITHIN GROUP (ORDER BY ttft_ms)"                                  \
  " FROM request_logs WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz" \
  " GROUP BY 1 ORDER BY 1"

constexpr Statement kStatsByKey{"log_stats_key", STATS_SELECT("key_id::text")};
constexpr Statement kStatsByModel{"log_stats_model", STATS_SELECT("model")};
constexpr Statement kStatsByProvider{"log_stats_provider", STATS_SELECT("provider")};
constexpr Statement kStatsByDay{"log_stats_day",
                                STATS_SELECT("to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')")};

// $2 today, [$3, $4) this month.
// clang-format off
#define USAGE_TOTALS(filter)                                                                         \
  " coalesce(sum(requests) FILTER (WHERE " filter "), 0),"                                         \
  " coalesce(sum(errors) FILTER (WHERE " filter "), 0),"                                           \
  " coalesce(sum(prompt_tokens) FILTER (WHERE " filter "), 0),"                                    \
  " coalesce(sum(completion_tokens) FILTER (WHERE " filter "), 0),"                                \
  " coalesce(sum(cached_tokens) FILTER (WHERE " filter "), 0),"                                    \
  " coalesce(sum(total_tokens) FILTER (WHERE " filter "), 0),"                                     \
  " coalesce(sum(cost) FILTER (WHERE " filter "), 0)::float8"

constexpr Statement kKeyUsage{"log_key_usage",
                              "SELECT" USAGE_TOTALS("day = $2::date") "," USAGE_TOTALS(
                                  "day >= $3::date AND day < $4::date") "," USAGE_TOTALS("true")
                              " FROM usage_daily WHERE key_id = $1::uuid"};
// clang-format on

#undef LOG_FILTERS
#undef STATS_SELECT
#undef USAGE_TOTALS

// Both statements of a page see the same snapshot, so total agrees with the rows.
using ReadTx = pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only>;

core::Error invalid(std::string message, std::string param) {
  return core::Error{core::errc::invalid_request, std::move(message), std::move(param)};
}

core::Status check(const LogQuery& q) {
  if (q.key_id && !detail::is_uuid(*q.key_id)) return invalid("'key_id' must be a UUID.", "key_id");
  if (q.page < 1) return invalid("'page' must be at least 1.", "page");
  if (q.per_page < 1 || q.per_page > kMaxPerPage)
    return invalid(fmt::format("'per_page' must be from 1 to {}.", kMaxPerPage), "per_page");
  return core::ok();
}

// Within what timestamptz text can say (0001-01-01 .. 9999-12-31): a bound further out means the
// same, and would otherwise fail the query.
std::string timestamp_param(std::int64_t us) {
  constexpr std::int64_t kMin = -62'135'596'800'000'000, kMax = 253'402'300'799'999'999;
  return detail::rfc3339_us(std::clamp(us, kMin, kMax));
}

std::optional<std::string> optional_ts(const std::optional<std::int64_t>& us) {
  if (!us) return std::nullopt;
  return timestamp_param(*us);
}

// A page far beyond the last one is just empty: the offset saturates instead of overflowing.
std::int64_t offset_of(const LogQuery& q) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  return q.page - 1 > kMax / q.per_page ? kMax : (q.page - 1) * q.per_page;
}

std::string text_or_empty(const pqxx::field& f) {
  return f.is_null() ? std::string() : f.as<std::string>();
}

LogEntry entry_from(const pqxx::row& r) {
  LogEntry e;
  e.id = r[0].as<std::int64_t>();
  e.created_at = r[1].as<std::string>();
  core::RequestLog& l = e.row;
  l.created_at_us = r[2].as<std::int64_t>();
  l.request_id = r[3].as<std::string>();
  l.upstream_request_id = text_or_empty(r[4]);
  l.key_id = text_or_empty(r[5]);
  l.model = text_or_empty(r[6]);
  l.provider = text_or_empty(r[7]);
  l.upstream_model = text_or_empty(r[8]);
  l.status = r[9].as<int>();
  l.error_code = text_or_empty(r[10]);
  l.prompt_tokens = r[11].as<std::int64_t>();
  l.completion_tokens = r[12].as<std::int64_t>();
  l.cached_tokens = r[13].as<std::int64_t>();
  l.cache_creation_tokens = r[14].as<std::int64_t>();
  l.total_tokens = r[15].as<std::int64_t>();
  l.cost = detail::optional_double(r[16]);
  l.latency_ms = r[17].as<double>();
  l.ttft_ms = detail::optional_double(r[18]);
  l.is_stream = r[19].as<bool>();
  l.attempts = r[20].as<int>();
  l.client_addr = text_or_empty(r[21]);
  return e;
}

StatsRow stats_from(const pqxx::row& r) {
  StatsRow s;
  s.group = detail::optional_text(r[0]);
  s.requests = r[1].as<std::int64_t>();
  s.errors = r[2].as<std::int64_t>();
  s.prompt_tokens = r[3].as<std::int64_t>();
  s.completion_tokens = r[4].as<std::int64_t>();
  s.total_tokens = r[5].as<std::int64_t>();
  s.cost = detail::optional_double(r[6]);
  s.p50_latency_ms = detail::optional_double(r[7]);
  s.p95_latency_ms = detail::optional_double(r[8]);
  s.p50_ttft_ms = detail::optional_double(r[9]);
  s.p95_ttft_ms = detail::optional_double(r[10]);
  return s;
}

UsageTotals totals_from(const pqxx::row& r, int at) {
  UsageTotals t;
  t.requests = r[at].as<std::int64_t>();
  t.errors = r[at + 1].as<std::int64_t>();
  t.prompt_tokens = r[at + 2].as<std::int64_t>();
  t.completion_tokens = r[at + 3].as<std::int64_t>();
  t.cached_tokens = r[at + 4].as<std::int64_t>();
  t.total_tokens = r[at + 5].as<std::int64_t>();
  t.cost = r[at + 6].as<double>();
  return t;
}

const Statement& stats_statement(StatsGroup g) {
  switch (g) {
    case StatsGroup::key:
      return kStatsByKey;
    case StatsGroup::model:
      return kStatsByModel;
    case StatsGroup::provider:
      return kStatsByProvider;
    case StatsGroup::day:
      break;
  }
  return kStatsByDay;
}

}  // namespace

std::optional<StatusFilter> parse_status_filter(std::string_view s) noexcept {
  if (s.size() != 3) return std::nullopt;
  if ((s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X')) {
    if (s[0] < '1' || s[0] > '5') return std::nullopt;
    const int base = (s[0] - '0') * 100;
    return StatusFilter{base, base + 99};
  }
  int code = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), code);
  if (ec != std::errc() || end != s.data() + s.size() || code < 100 || code > 599) return std::nullopt;
  return StatusFilter{code, code};
}

std::optional<StatsGroup> parse_stats_group(std::string_view s) noexcept {
  if (s == "key") return StatsGroup::key;
  if (s == "model") return StatsGroup::model;
  if (s == "provider") return StatsGroup::provider;
  if (s == "day") return StatsGroup::day;
  return std::nullopt;
}

boost::asio::awaitable<Result<LogPage>> LogRepo::logs(LogQuery query) {
  if (auto valid = check(query); !valid) co_return std::move(valid).error();
  auto select = [q = std::move(query)](pqxx::connection& c) -> Result<LogPage> {
    ReadTx tx(c, "log_page");
    tx.exec("SET LOCAL plan_cache_mode = force_custom_plan");
    const auto from = optional_ts(q.from_us);
    const auto to = optional_ts(q.to_us);
    const std::optional<int> lo = q.status ? std::optional<int>(q.status->from) : std::nullopt;
    const std::optional<int> hi = q.status ? std::optional<int>(q.status->to) : std::nullopt;
    const std::int64_t offset = offset_of(q);
    LogPage page;
    for (const auto& row :
         exec(tx, kLogs, q.key_id, q.model, q.provider, lo, hi, from, to, q.per_page, offset))
      page.rows.push_back(entry_from(row));
    page.total =
        exec(tx, kLogsCount, q.key_id, q.model, q.provider, lo, hi, from, to)[0][0].as<std::int64_t>();
    tx.commit();
    return page;
  };
  co_return co_await db_.read<LogPage>(std::move(select));
}

boost::asio::awaitable<Result<std::vector<StatsRow>>> LogRepo::stats(std::int64_t from_us, std::int64_t to_us,
                                                                     StatsGroup group_by) {
  auto select = [from = timestamp_param(from_us), to = timestamp_param(to_us),
                 group_by](pqxx::connection& c) -> Result<std::vector<StatsRow>> {
    ReadTx tx(c, "log_stats");
    tx.exec("SET LOCAL plan_cache_mode = force_custom_plan");  // prune partitions by the range
    std::vector<StatsRow> out;
    for (const auto& row : exec(tx, stats_statement(group_by), from, to)) out.push_back(stats_from(row));
    tx.commit();
    return out;
  };
  co_return co_await db_.read<std::vector<StatsRow>>(std::move(select));
}

boost::asio::awaitable<Result<KeyUsage>> LogRepo::key_usage(std::string key_id,
                                                            std::chrono::system_clock::time_point now) {
  if (!detail::is_uuid(key_id)) co_return invalid("'key_id' must be a UUID.", "key_id");
  using namespace std::chrono;
  const sys_days today = floor<days>(now);
  const year_month_day ymd{today};
  const sys_days month_start{ymd.year() / ymd.month() / 1};
  const sys_days next_month{(ymd.year() / ymd.month() + months(1)) / 1};
  auto select = [id = std::move(key_id), day = detail::iso_date(today), first = detail::iso_date(month_start),
                 end = detail::iso_date(next_month)](pqxx::connection& c) -> Result<KeyUsage> {
    pqxx::read_transaction tx(c, "log_key_usage");
    const auto rows = exec(tx, kKeyUsage, id, day, first, end);  // aggregates: always one row
    tx.commit();
    return KeyUsage{totals_from(rows[0], 0), totals_from(rows[0], 7), totals_from(rows[0], 14)};
  };
  co_return co_await db_.read<KeyUsage>(std::move(select));
}

}  // namespace storage
