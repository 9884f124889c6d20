#include "storage/log_writer.hpp"

#include "core/thread_name.hpp"
#include "storage/log_batch.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pqxx/tablewriter>
#include <pqxx/transaction>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

namespace storage {
namespace {

using detail::exec;
using detail::Statement;
using std::chrono::days;
using std::chrono::sys_days;
using SysTime = std::chrono::system_clock::time_point;

// Arbitrary but fixed, next to migrate()'s key: replicas maintain partitions one after the other.
constexpr long long kPartitionLockKey = 0x6c6c6d67770002;  // "llmgw" 0002
constexpr const char* kPartitionPrefix = "request_logs_";
// Days kept in place around today: yesterday (rows stamped just before midnight, late clocks) to a
// week ahead (so a writer that cannot maintain for days still has somewhere to write).
constexpr int kDaysBehind = 1;
constexpr int kDaysAhead = 7;
// A failed maintenance is tried again sooner than the regular interval.
constexpr std::chrono::seconds kMaintenanceRetry{30};
constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

// A batch is one transaction: COPY puts the rows in request_logs (the cheapest way in: about 7.5 µs
// of PostgreSQL CPU a row, against 17.5 when the rows came as one JSON parameter and the totals were
// upserted from its RETURNING; bench/results/2026-11-25-log-copy.md), then one statement adds them to
// usage_daily and key_budget_usage from totals summed by the writer (log_batch.hpp), so the totals always
// match the log. A row whose day has no partition fails the COPY, and so the batch; the retry (after
// maintenance) leaves out the rows whose day has none: one row stamped far off must not lose its neighbours.
//
// usage_daily is upserted in (key_id, day) order and key_budget_usage in key_id order, so that
// concurrent replicas lock rows in the same order and cannot deadlock. key_budget_usage (what each
// budget has used) gets, per key, the tokens and the cost of the rows created at or after the key's
// budget_reset_at, read in the same transaction (kBudgetResets); rows without a key, or naming no key
// in user_keys, add nothing. The cost is counted in micro-USD, each row's rounded (NULL: 0, clamped
// to 0..10^9 USD), and the totals saturate instead of overflowing bigint. A reset (KeyRepo::update)
// zeroes a row under its lock: a batch that read the reset time before the reset committed may still
// add its rows created before the new reset time to the zeroed row.
constexpr Statement kBudgetResets{
    "log_budget_resets",
    "SELECT id::text, (extract(epoch FROM budget_reset_at) * 1000000)::bigint FROM user_keys"
    " WHERE id = ANY($1::uuid[])"};

constexpr Statement kAddUsage{
    "log_add_usage",
    "WITH day_costs AS ("
    "  SELECT g, sum(c) AS cost FROM unnest($9::numeric[], $10::int[]) AS x(c, g) GROUP BY g"
    "), totals AS ("
    "  INSERT INTO usage_daily AS u (key_id, day, requests, errors, prompt_tokens, completion_tokens,"
    "    cached_tokens, total_tokens, cost)"
    "  SELECT d.key_id, date '1970-01-01' + d.day, d.requests, d.errors, d.prompt, d.completion, d.cached,"
    "    d.total, coalesce(c.cost, 0)"
    "  FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],"
    "    $7::bigint[], $8::bigint[]) WITH ORDINALITY"
    "    AS d(key_id, day, requests, errors, prompt, completion, cached, total, g)"
    "  LEFT JOIN day_costs c USING (g) ORDER BY 1, 2"
    "  ON CONFLICT (key_id, day) DO UPDATE SET requests = u.requests + excluded.requests,"
    "    errors = u.errors + excluded.errors, prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,"
    "    completion_tokens = u.completion_tokens + excluded.completion_tokens,"
    "    cached_tokens = u.cached_tokens + excluded.cached_tokens,"
    "    total_tokens = u.total_tokens + excluded.total_tokens, cost = u.cost + excluded.cost"
    "), budget_costs AS ("
    "  SELECT g, sum(least(greatest(round(c * 1000000), 0), 1000000000000000))::bigint AS micro"
    "  FROM unnest($13::numeric[], $14::int[]) AS x(c, g) GROUP BY g"
    ")"
    " INSERT INTO key_budget_usage AS b (key_id, tokens, micro_usd)"
    " SELECT k.key_id, k.tokens, coalesce(c.micro, 0)"
    " FROM unnest($11::uuid[], $12::bigint[]) WITH ORDINALITY AS k(key_id, tokens, g)"
    " LEFT JOIN budget_costs c USING (g) ORDER BY 1"
    " ON CONFLICT (key_id) DO UPDATE SET"
    "   tokens = least(b.tokens::numeric + excluded.tokens, 9223372036854775807)::bigint,"
    "   micro_usd = least(b.micro_usd::numeric + excluded.micro_usd, 9223372036854775807)::bigint"};

constexpr Statement kListPartitions{
    "log_list_partitions",
    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'request_logs'::regclass"};

// ---- partitions ----

std::string partition_name(sys_days day) {
  const std::chrono::year_month_day ymd{day};
  return fmt::format("{}{:04}{:02}{:02}", kPartitionPrefix, static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

// The day of a partition this writer names; nullopt for any other table.
std::optional<sys_days> partition_day(std::string_view name) {
  const std::string_view prefix(kPartitionPrefix);
  if (name.size() != prefix.size() + 8 || name.substr(0, prefix.size()) != prefix) return std::nullopt;
  int digits = 0;
  const char* begin = name.data() + prefix.size();
  const auto [end, ec] = std::from_chars(begin, begin + 8, digits);
  if (ec != std::errc() || end != begin + 8) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(digits / 10000),
                                        std::chrono::month(static_cast<unsigned>(digits / 100 % 100)),
                                        std::chrono::day(static_cast<unsigned>(digits % 100))};
  if (!ymd.ok()) return std::nullopt;
  return sys_days(ymd);
}

void create_partition(pqxx::work& tx, sys_days day) {
  tx.exec(fmt::format(
      "CREATE TABLE IF NOT EXISTS {} PARTITION OF request_logs"
      " FOR VALUES FROM ('{} 00:00:00+00') TO ('{} 00:00:00+00')",
      tx.quote_name(partition_name(day)), detail::iso_date(day), detail::iso_date(day + days(1))));
}

struct PartitionChanges {
  std::vector<std::string> created, dropped;
};

// Creates the partitions from yesterday to kDaysAhead and drops those whose day ended more than
// retention_days before `now`, in one transaction under the advisory lock.
PartitionChanges maintain_partitions(pqxx::connection& c, SysTime now, int retention_days) {
  PartitionChanges changes;
  pqxx::work tx(c, "log_partitions");
  // Creating or dropping a partition locks request_logs exclusively, and the lock request queues
  // every insert and query behind it while it waits (e.g. for a long admin query): give up soon and
  // try again later instead.
  tx.exec("SET LOCAL lock_timeout = '2s'");
  tx.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kPartitionLockKey));
  std::set<std::string> existing;
  for (const auto& row : exec(tx, kListPartitions)) existing.insert(row[0].as<std::string>());

  const auto today = std::chrono::floor<days>(now);
  for (auto day = today - days(kDaysBehind); day <= today + days(kDaysAhead); day += days(1)) {
    if (existing.contains(partition_name(day))) continue;
    create_partition(tx, day);
    changes.created.push_back(partition_name(day));
  }
  if (retention_days > 0) {
    const SysTime cutoff = now - days(retention_days);
    for (const auto& name : existing) {
      const auto day = partition_day(name);
      if (!day || SysTime(*day + days(1)) >= cutoff) continue;
      tx.exec("DROP TABLE " + tx.quote_name(name));
      changes.dropped.push_back(name);
    }
  }
  tx.commit();
  return changes;
}

void log_changes(const PartitionChanges& changes) {
  if (!changes.created.empty())
    detail::log_db_event("info", "request_logs partitions created",
                         fmt::format("{}", fmt::join(changes.created, " ")));
  if (!changes.dropped.empty())
    detail::log_db_event("info", "request_logs partitions dropped",
                         fmt::format("{}", fmt::join(changes.dropped, " ")));
}

// The rows of `batch` whose day has a partition now.
std::vector<detail::LogRow> partitioned_rows(pqxx::work& tx, const std::vector<core::RequestLog>& batch) {
  std::set<std::string> partitions;
  for (const auto& row : exec(tx, kListPartitions)) partitions.insert(row[0].as<std::string>());
  std::vector<detail::LogRow> rows;
  for (const auto& r : batch)
    if (partitions.contains(partition_name(sys_days(days(detail::log_day(r)))))) rows.emplace_back(r);
  return rows;
}

void copy_rows(pqxx::work& tx, const std::vector<detail::LogRow>& rows) {
  std::string text;
  text.reserve(rows.size() * 256);
  for (const auto& r : rows) {
    if (!text.empty()) text.push_back('\n');
    detail::append_copy_row(text, r);
  }
  // libpqxx 6.4's stream_to keeps write_raw_line() private and would convert and escape every field
  // again; tablewriter (deprecated for stream_to) is its one public way to send COPY text as built.
  // The whole batch goes as one "line": COPY reads a byte stream, and the writer adds the last newline.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  pqxx::tablewriter copy(tx, "request_logs", detail::kLogCopyColumns.begin(), detail::kLogCopyColumns.end());
  copy.write_raw_line(text);
  copy.complete();
#pragma GCC diagnostic pop
}

void add_usage(pqxx::work& tx, const std::vector<detail::LogRow>& rows) {
  const std::string keys = detail::key_array(rows);
  if (keys.empty()) return;  // no row has a key: nothing to count
  detail::BudgetResets resets;
  for (const auto& row : exec(tx, kBudgetResets, keys))
    resets.emplace(row[0].as<std::string>(), row[1].as<std::int64_t>());
  const auto p = detail::usage_params(rows, resets);
  exec(tx, kAddUsage, p.keys, p.days, p.requests, p.errors, p.prompt, p.completion, p.cached, p.total,
       p.costs, p.cost_groups, p.budget_keys, p.budget_tokens, p.budget_costs, p.budget_cost_groups);
}

// Rows written, or nullopt when the batch failed (the failure is classified, and logged unless the
// server simply cannot be reached). `skip_unpartitioned`: leave out the rows whose day has no
// partition instead of failing on them.
std::optional<std::int64_t> write_rows(detail::PooledConnection& conn,
                                       const std::vector<core::RequestLog>& batch,
                                       bool skip_unpartitioned) noexcept {
  try {
    pqxx::work tx(conn.get(), "log_batch");
    std::vector<detail::LogRow> rows;
    if (skip_unpartitioned) {
      rows = partitioned_rows(tx, batch);
    } else {
      rows.reserve(batch.size());
      for (const auto& r : batch) rows.emplace_back(r);
    }
    if (!rows.empty()) {
      copy_rows(tx, rows);
      add_usage(tx, rows);
    }
    tx.commit();
    return static_cast<std::int64_t>(rows.size());
  } catch (...) {
    conn.classify_exception();
    return std::nullopt;
  }
}

}  // namespace

LogWriter::LogWriter(LogWriterOptions options)
    : options_(std::move(options)),
      conninfo_(detail::pool_conninfo(options_.url, options_.connect_timeout_s)),
      conn_(conninfo_, options_.statement_timeout) {
  options_.queue_max = std::max<std::size_t>(options_.queue_max, 1);
  options_.batch_max = std::max<std::size_t>(options_.batch_max, 1);
  options_.flush_interval = std::max(options_.flush_interval, std::chrono::milliseconds(1));
  options_.maintenance_interval = std::max(options_.maintenance_interval, std::chrono::milliseconds(1));
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-logwriter");
    run();
  });
}

LogWriter::~LogWriter() {
  stop();
}

bool LogWriter::submit(core::RequestLog row) noexcept {
  try {
    if (row.created_at_us <= 0) {
      const auto now = options_.clock().time_since_epoch();
      row.created_at_us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    }
    bool batch_ready = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= options_.queue_max) {
        ++dropped_;
        return false;
      }
      queue_.push_back(std::move(row));
      queued_.store(queue_.size());
      batch_ready = queue_.size() == options_.batch_max;  // wake the writer once, not per row
    }
    if (batch_ready) wake_.notify_one();
    return true;
  } catch (...) {  // bad_alloc, or a clock that throws: the row is lost, the caller is not
    ++dropped_;
    return false;
  }
}

LogWriterCounters LogWriter::counters() const noexcept {
  return LogWriterCounters{queued_.load(), written_.load(), dropped_.load(), failed_batches_.load()};
}

void LogWriter::stop(std::chrono::milliseconds grace) {
  std::lock_guard stop_lock(stop_mu_);
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  bool in_time = false;
  {
    std::unique_lock lock(mu_);
    in_time = finished_.wait_for(lock, grace, [this] { return done_; });
    if (!in_time) abandon_ = true;
  }
  if (!in_time) {
    // The server hangs (or is too slow): nothing else would end the statement in flight.
    detail::log_db_event("warn", "request log writer stop: grace over, dropping what is left", "");
    conn_.interrupt();
    wake_.notify_all();
  }
  thread_.join();
}

core::Status LogWriter::maintain(SysTime now) {
  detail::PooledConnection conn(conninfo_, options_.statement_timeout);
  try {
    log_changes(maintain_partitions(conn.get(), now, options_.retention_days));
    return core::ok();
  } catch (...) {
    return conn.on_exception();
  }
}

void LogWriter::run() {
  auto flush_at = Clock::now() + options_.flush_interval;
  while (!abandoned()) {
    if (Clock::now() >= maintenance_due_) {
      const bool ok = maintain_now();
      maintenance_due_ = Clock::now() + (ok ? options_.maintenance_interval : kMaintenanceRetry);
    }
    std::vector<core::RequestLog> batch;
    try {
      batch = take(std::min(flush_at, maintenance_due_));
      if (Clock::now() >= flush_at) flush_at = Clock::now() + options_.flush_interval;
      if (!batch.empty()) {
        write(batch);
        continue;
      }
    } catch (...) {  // out of memory building the batch: it is lost, the writer goes on
      dropped_ += batch.size();
      continue;
    }
    std::lock_guard lock(mu_);
    if (stopping_) break;  // and nothing is left
  }
  drop_queued();  // only after stop()'s grace ran out
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  finished_.notify_all();
}

// Waits until batch_max rows are queued, stop() is called or `until`, then takes up to batch_max.
std::vector<core::RequestLog> LogWriter::take(Clock::time_point until) {
  std::unique_lock lock(mu_);
  wake_.wait_until(lock, until, [this] { return stopping_ || queue_.size() >= options_.batch_max; });
  const std::size_t n = std::min(queue_.size(), options_.batch_max);
  std::vector<core::RequestLog> batch(
      std::make_move_iterator(queue_.begin()),
      std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  queued_.store(queue_.size());
  return batch;
}

void LogWriter::write(const std::vector<core::RequestLog>& batch) {
  auto written = write_rows(conn_, batch, false);
  if (!written && !abandoned()) {
    // A missing partition is the usual cause (a new day, a writer that could not maintain for a
    // while); a lost session is reconnected by the retry itself.
    maintain_now();
    written = write_rows(conn_, batch, true);
  }
  const auto n = static_cast<std::int64_t>(batch.size());
  if (!written) {
    dropped_ += static_cast<std::uint64_t>(n);
    ++failed_batches_;
    detail::log_db_event("warn", "request log batch dropped", fmt::format("{} rows", n));
    conn_.reset();  // start the next batch on a new session, after a pause
    back_off();
    return;
  }
  backoff_ = std::chrono::milliseconds(0);
  written_ += static_cast<std::uint64_t>(*written);
  if (*written < n) {
    dropped_ += static_cast<std::uint64_t>(n - *written);
    detail::log_db_event("warn", "request log rows dropped: no partition for their day",
                         fmt::format("{} rows", n - *written));
  }
}

bool LogWriter::maintain_now() noexcept {
  try {
    log_changes(maintain_partitions(conn_.get(), options_.clock(), options_.retention_days));
    return true;
  } catch (...) {
    conn_.classify_exception();  // logged there, unless the server cannot be reached at all
    return false;
  }
}

// Waits before the next batch after a lost one, doubling up to kMaxBackoff; stop() cuts it short
// (the queue is then written, or dropped, as fast as it goes).
void LogWriter::back_off() {
  backoff_ = std::clamp(backoff_ * 2, kMinBackoff, kMaxBackoff);
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, backoff_, [this] { return stopping_; });
}

bool LogWriter::abandoned() {
  std::lock_guard lock(mu_);
  return abandon_;
}

void LogWriter::drop_queued() {
  std::lock_guard lock(mu_);
  dropped_ += queue_.size();
  queue_.clear();
  queued_.store(0);
}

}  // namespace storage
