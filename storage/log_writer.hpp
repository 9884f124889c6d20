#pragma once
// The request log's writer. The hot path hands each finished request to submit(), which never
// blocks and never throws; a thread of its own, with a PostgreSQL connection of its own (not the
// Db pool: a log backlog must never take a connection from the requests), writes the rows in
// batches, one transaction each: the rows into request_logs, the per-key per-UTC-day totals
// into usage_daily, and what each key's budget has used since its budget_reset_at into
// key_budget_usage.
//
// The queue is bounded: when PostgreSQL is slow or down, rows beyond queue_max are dropped and
// counted instead of growing the process. The writer also owns request_logs' daily partitions
// (request_logs_YYYYMMDD, UTC days): it keeps yesterday to 7 days ahead in place and drops the ones
// whose day ended more than retention_days ago, at start and then every maintenance_interval.
#include "core/domain.hpp"
#include "core/result.hpp"
#include "storage/pooled_connection.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace storage {

struct LogWriterOptions {
  std::string url;                                // postgresql://... URI or key=value conninfo
  std::size_t queue_max = 20000;                  // rows waiting; beyond -> dropped
  std::size_t batch_max = 1000;                   // rows per transaction
  std::chrono::milliseconds flush_interval{250};  // the longest a row waits for a batch to fill
  int retention_days = 30;                        // <= 0: partitions are never dropped
  std::chrono::milliseconds maintenance_interval = std::chrono::hours(1);
  std::chrono::milliseconds statement_timeout{5000};  // server side, on the writer's connection
  int connect_timeout_s = 3;
  // "Now" for partition maintenance (which days to create, which to drop) and for stamping rows that
  // come without a time. Called from submit()'s threads too, so it must be thread-safe. Tests pin a day.
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

// Since construction, for metrics. Each value is read atomically; together they are not a snapshot.
struct LogWriterCounters {
  std::uint64_t queued = 0;          // rows waiting now
  std::uint64_t written = 0;         // rows committed
  std::uint64_t dropped = 0;         // rows lost: queue full, batch failed twice, no partition, stopped
  std::uint64_t failed_batches = 0;  // batches lost whole (the retry failed too)
};

class LogWriter {
 public:
  explicit LogWriter(LogWriterOptions options);  // starts the thread; connects lazily
  ~LogWriter();                                  // stop()
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // From any thread. Queues the row, or drops and counts it (false) when queue_max rows wait or the
  // writer is stopping. A row with created_at_us <= 0 is stamped with the current time.
  bool submit(core::RequestLog row) noexcept;

  LogWriterCounters counters() const noexcept;

  // Stops accepting rows, writes what is queued, and joins, within `grace`: after it, the query in
  // flight is made to fail by shutting its socket down (a hung server) and the rest is dropped. A
  // connection attempt under way can add up to connect_timeout_s. Idempotent; any thread.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  // Partition maintenance for `now`, as the writer does it periodically, on a connection of its
  // own. Blocking; for tests and tools.
  core::Status maintain(std::chrono::system_clock::time_point now);

 private:
  using Clock = std::chrono::steady_clock;

  void run();
  std::vector<core::RequestLog> take(Clock::time_point until);
  void write(const std::vector<core::RequestLog>& batch);
  bool maintain_now() noexcept;  // on the writer's connection, for options_.clock()
  void back_off();
  bool abandoned();
  void drop_queued();

  LogWriterOptions options_;
  std::string conninfo_;
  detail::PooledConnection conn_;  // the writer thread's; interrupt() from stop()

  mutable std::mutex mu_;
  std::condition_variable wake_;      // writer: batch_max rows queued, or stop
  std::condition_variable finished_;  // stop(): the writer thread is done
  std::deque<core::RequestLog> queue_;
  bool stopping_ = false;
  bool abandon_ = false;  // stop()'s grace is over: drop instead of writing
  bool done_ = false;

  Clock::time_point maintenance_due_{};   // writer thread only
  std::chrono::milliseconds backoff_{0};  // writer thread only

  std::atomic<std::uint64_t> queued_{0}, written_{0}, dropped_{0}, failed_batches_{0};

  std::mutex stop_mu_;  // serialises stop() callers around join()
  std::thread thread_;
};

}  // namespace storage
