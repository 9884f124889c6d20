#include "storage/log_writer.hpp"

#include "core/json_write.hpp"
#include "core/model_rewrite.hpp"
#include "core/thread_name.hpp"
#include "storage/sql.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pqxx/transaction>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

namespace storage {
namespace {

namespace json_write = core::json_write;
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
// 9999-12-31T23:59:59.999999Z: a later created_at would overflow timestamptz and fail the batch
// (submit() stamps the ones <= 0).
constexpr std::int64_t kMaxTimestampUs = 253'402'300'799'999'999;
// Longer values are cut (at a character boundary): the log is for operators, not for payloads.
constexpr std::size_t kMaxText = 1024;

// The whole batch travels as one JSON parameter. One statement writes the rows and adds what was
// written to usage_daily, so the totals always match the log. $2 (the retry after maintenance)
// skips the rows whose day has no partition: one row stamped far off must not lose its neighbours.
// usage_daily is upserted in (key_id, day) order so that concurrent replicas lock rows in the same
// order and cannot deadlock.
// key_budget_usage (what each budget has used) gets, per key, the tokens and the cost of the rows
// created at or after the key's budget_reset_at; rows without a key, or naming no key in user_keys,
// add nothing. The cost is counted in micro-USD, each row's rounded (NULL: 0, clamped to 0..10^9
// USD), and the totals saturate instead of overflowing bigint. Upserted in key_id order, like
// usage_daily (every replica runs this same statement, so the two tables are also taken in the same
// order). A reset (KeyRepo::update) zeroes a row under its lock: a batch already running when the
// reset commits may still add its rows created before the reset time to the zeroed row.
constexpr Statement kInsertBatch{
    "log_insert_batch",
    "WITH batch AS ("
    "  SELECT x.*, timestamptz 'epoch' + x.created_at_us * interval '1 microsecond' AS created_at"
    "  FROM json_to_recordset($1::json) AS x(request_id text, upstream_request_id text, key_id uuid,"
    "    model text, provider text, upstream_model text, status smallint, error_code text,"
    "    prompt_tokens integer, completion_tokens integer, cached_tokens integer,"
    "    cache_creation_tokens integer, total_tokens integer, cost numeric, latency_ms real,"
    "    ttft_ms real, is_stream boolean, attempts smallint, client_addr text, created_at_us bigint)"
    "), logged AS ("
    "  INSERT INTO request_logs (request_id, upstream_request_id, key_id, model, provider, upstream_model,"
    "    status, error_code, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens,"
    "    total_tokens, cost, latency_ms, ttft_ms, is_stream, attempts, client_addr, created_at)"
    "  SELECT request_id, upstream_request_id, key_id, model, provider, upstream_model, status,"
    "    error_code, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens,"
    "    total_tokens, cost, latency_ms, ttft_ms, is_stream, attempts, client_addr, created_at"
    "  FROM batch"
    "  WHERE NOT $2::boolean OR to_regclass('request_logs_' ||"
    "    to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL"
    "  RETURNING key_id, created_at, status, error_code, prompt_tokens, completion_tokens,"
    "    cached_tokens, total_tokens, cost"
    "), totals AS ("
    "  INSERT INTO usage_daily AS u (key_id, day, requests, errors, prompt_tokens, completion_tokens,"
    "    cached_tokens, total_tokens, cost)"
    "  SELECT key_id, (created_at AT TIME ZONE 'UTC')::date, count(*),"
    "    count(*) FILTER (WHERE status >= 400 OR error_code IS NOT NULL), sum(prompt_tokens),"
    "    sum(completion_tokens), sum(cached_tokens), sum(total_tokens), coalesce(sum(cost), 0)"
    "  FROM logged WHERE key_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
    "  ON CONFLICT (key_id, day) DO UPDATE SET requests = u.requests + excluded.requests,"
    "    errors = u.errors + excluded.errors, prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,"
    "    completion_tokens = u.completion_tokens + excluded.completion_tokens,"
    "    cached_tokens = u.cached_tokens + excluded.cached_tokens,"
    "    total_tokens = u.total_tokens + excluded.total_tokens, cost = u.cost + excluded.cost"
    "), budgets AS ("
    "  INSERT INTO key_budget_usage AS b (key_id, tokens, micro_usd)"
    "  SELECT l.key_id, sum(l.total_tokens),"
    "    sum(least(greatest(round(coalesce(l.cost, 0) * 1000000), 0), 1000000000000000))::bigint"
    "  FROM logged l JOIN user_keys k ON k.id = l.key_id"
    "  WHERE l.created_at >= k.budget_reset_at GROUP BY 1 ORDER BY 1"
    "  ON CONFLICT (key_id) DO UPDATE SET"
    "    tokens = least(b.tokens::numeric + excluded.tokens, 9223372036854775807)::bigint,"
    "    micro_usd = least(b.micro_usd::numeric + excluded.micro_usd, 9223372036854775807)::bigint"
    ")"
    " SELECT count(*) FROM logged"};

constexpr Statement kListPartitions{
    "log_list_partitions",
    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'request_logs'::regclass"};

// ---- rows -> JSON ----

// At most kMaxText bytes, cut before a character, not inside one.
std::string_view cut(std::string_view s) {
  if (s.size() <= kMaxText) return s;
  std::size_t end = kMaxText;  // s[end] is the first byte left out: back up to a character's start
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

// PostgreSQL text holds neither NUL nor invalid UTF-8, and one such value would fail the whole
// batch: such bytes become '?'.
std::string clean_text(std::string_view s) {
  std::string out(cut(s));
  if (out.find('\0') == std::string::npos && core::valid_utf8(out)) return out;
  for (char& c : out)
    if (c == '\0' || static_cast<unsigned char>(c) >= 0x80) c = '?';
  return out;
}

// The batch is written straight into one string: this runs for every request, and a DOM per row
// (20 members, a string each) cost more than the rest of the writer.
struct RowWriter {
  std::string& out;
  bool first = true;

  char lead() {
    const char l = first ? '{' : ',';
    first = false;
    return l;
  }
  void key(std::string_view name) { json_write::append_key(out, lead(), name); }
  void text(std::string_view name, std::string_view v) {  // always written: request_id
    const std::string_view s = cut(v);
    if (s.find('\0') == std::string_view::npos && core::valid_utf8(s))
      json_write::append_member(out, lead(), name, s);  // the usual case: no copy
    else
      json_write::append_member(out, lead(), name, clean_text(s));
  }
  void text_or_null(std::string_view name, std::string_view v) {
    if (v.empty()) return null(name);
    text(name, v);
  }
  void uuid_or_null(std::string_view name, const std::string& v) {
    if (!detail::is_uuid(v)) return null(name);  // a malformed id would fail the uuid cast, and the batch
    json_write::append_member(out, lead(), name, v);
  }
  void integer(std::string_view name, std::int64_t v) { json_write::append_member(out, lead(), name, v); }
  void number(std::string_view name, double v) {  // null when not finite
    key(name);
    json_write::append_double(out, v);
  }
  // Milliseconds to the microsecond (the column is a real, ~7 digits): fixed decimals, not the
  // shortest form of the double, which cost some 600 instructions a value.
  void millis(std::string_view name, double ms) {
    if (!std::isfinite(ms) || std::fabs(ms) >= 1e12) return number(name, ms);  // NaN, inf: null
    key(name);
    json_write::append_fixed3(out, std::llround(ms * 1000));
  }
  void number_or_null(std::string_view name, const std::optional<double>& v) {
    if (!v) return null(name);
    number(name, *v);
  }
  void boolean(std::string_view name, bool v) {
    key(name);
    out.append(v ? "true" : "false");
  }
  void null(std::string_view name) {
    key(name);
    out.append("null");
  }
  void end() { out.push_back('}'); }
};

// Values outside the column's range would fail the batch: clamp to it.
std::int64_t clamp_to(std::int64_t v, std::int64_t max) {
  return std::clamp<std::int64_t>(v, 0, max);
}

void append_row(std::string& out, const core::RequestLog& r) {
  constexpr std::int64_t kInt = std::numeric_limits<std::int32_t>::max();
  constexpr std::int64_t kSmall = std::numeric_limits<std::int16_t>::max();
  RowWriter w{out};
  w.text("request_id", r.request_id);
  w.text_or_null("upstream_request_id", r.upstream_request_id);
  w.uuid_or_null("key_id", r.key_id);
  w.text_or_null("model", r.model);
  w.text_or_null("provider", r.provider);
  w.text_or_null("upstream_model", r.upstream_model);
  w.integer("status", clamp_to(r.status, kSmall));
  w.text_or_null("error_code", r.error_code);
  w.integer("prompt_tokens", clamp_to(r.prompt_tokens, kInt));
  w.integer("completion_tokens", clamp_to(r.completion_tokens, kInt));
  w.integer("cached_tokens", clamp_to(r.cached_tokens, kInt));
  w.integer("cache_creation_tokens", clamp_to(r.cache_creation_tokens, kInt));
  w.integer("total_tokens", clamp_to(r.total_tokens, kInt));
  w.number_or_null("cost", r.cost);
  w.millis("latency_ms", std::isfinite(r.latency_ms) ? r.latency_ms : 0.0);
  if (r.ttft_ms)
    w.millis("ttft_ms", *r.ttft_ms);
  else
    w.null("ttft_ms");
  w.boolean("is_stream", r.is_stream);
  w.integer("attempts", clamp_to(r.attempts, kSmall));
  w.text_or_null("client_addr", r.client_addr);
  w.integer("created_at_us", std::min(r.created_at_us, kMaxTimestampUs));
  w.end();
}

std::string batch_json(const std::vector<core::RequestLog>& batch) {
  std::string out;
  out.reserve(batch.size() * 512);
  out.push_back('[');
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_row(out, batch[i]);
  }
  out.push_back(']');
  return out;
}

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

// Rows written, or nullopt when the statement failed (the failure is classified, and logged
// unless the server simply cannot be reached).
std::optional<std::int64_t> insert_batch(detail::PooledConnection& conn, const std::string& rows,
                                         bool skip_unpartitioned) noexcept {
  try {
    pqxx::work tx(conn.get(), "log_batch");
    const auto written = exec(tx, kInsertBatch, rows, skip_unpartitioned)[0][0].as<std::int64_t>();
    tx.commit();
    return written;
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
  const std::string rows = batch_json(batch);
  auto written = insert_batch(conn_, rows, false);
  if (!written && !abandoned()) {
    // A missing partition is the usual cause (a new day, a writer that could not maintain for a
    // while); a lost session is reconnected by the retry itself.
    maintain_now();
    written = insert_batch(conn_, rows, true);
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
