#pragma once
// Read side of the request log for the admin API: the log itself (filtered, newest first, paged),
// aggregates over a time range, and a key's usage totals (from usage_daily, which outlives the
// log's retention). All reads, on the Db pool.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storage {

class Db;

// HTTP statuses from..to, inclusive.
struct StatusFilter {
  int from = 0, to = 0;
};
// "429" (an exact code, 100..599) or a class "1xx".."5xx" (any case); nullopt otherwise.
std::optional<StatusFilter> parse_status_filter(std::string_view s) noexcept;

struct LogQuery {
  std::optional<std::string> key_id;  // a UUID
  std::optional<std::string> model, provider;
  std::optional<StatusFilter> status;
  std::optional<std::int64_t> from_us, to_us;  // created_at in [from, to), microseconds since the epoch
  std::int64_t page = 1;                       // 1-based
  int per_page = 50;                           // 1..kMaxPerPage
};
inline constexpr int kMaxPerPage = 500;

struct LogEntry {
  std::int64_t id = 0;
  std::string created_at;  // RFC 3339 UTC with microseconds; row.created_at_us is set too
  core::RequestLog row;    // NULL columns come back as empty strings / nullopt
};

struct LogPage {
  std::vector<LogEntry> rows;  // created_at DESC, id DESC
  std::int64_t total = 0;      // rows matching the filters, over all pages
};

enum class StatsGroup { key, model, provider, day };
// "key" | "model" | "provider" | "day"; nullopt otherwise.
std::optional<StatsGroup> parse_stats_group(std::string_view s) noexcept;

struct StatsRow {
  // key_id, model, provider, or the UTC date YYYY-MM-DD; nullopt for rows without one (a request
  // that named no model, say), which come last.
  std::optional<std::string> group;
  std::int64_t requests = 0;
  std::int64_t errors = 0;  // status >= 400 or an error code
  std::int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
  std::optional<double> cost;  // sum of the known costs; nullopt when no row had one
  // percentile_cont over the rows that have a value; nullopt when none has.
  std::optional<double> p50_latency_ms, p95_latency_ms, p50_ttft_ms, p95_ttft_ms;
};

struct UsageTotals {
  std::int64_t requests = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0,
               total_tokens = 0;
  double cost = 0;  // USD, the known costs only
};

struct KeyUsage {
  UsageTotals today;  // the UTC day of `now`
  UsageTotals month;  // the UTC calendar month of `now`, up to its end
  UsageTotals total;  // every day recorded
};

class LogRepo {
 public:
  explicit LogRepo(Db& db) : db_(db) {}

  // invalid_request (with param) for a key_id that is not a UUID, page < 1, per_page outside
  // 1..kMaxPerPage. A page beyond the last one is empty (total still counts every match).
  boost::asio::awaitable<core::Result<LogPage>> logs(LogQuery query);
  // Rows with created_at in [from_us, to_us), one StatsRow per group, ordered by group.
  boost::asio::awaitable<core::Result<std::vector<StatsRow>>> stats(std::int64_t from_us, std::int64_t to_us,
                                                                    StatsGroup group_by);
  // Zeros for a key with no usage (whether the key exists is the caller's business); a key_id that
  // is not a UUID -> invalid_request.
  boost::asio::awaitable<core::Result<KeyUsage>> key_usage(std::string key_id,
                                                           std::chrono::system_clock::time_point now);

 private:
  Db& db_;
};

}  // namespace storage
