// llm-gateway: wiring only. Parse config, migrate, connect, listen, drain on SIGTERM.
#include "cache/redis_subscriber.hpp"
#include "core/log.hpp"
#include "gateway/app.hpp"
#include "gateway/server.hpp"
#include "gateway/worker.hpp"
#include "gateway/upstream_pool.hpp"
#include "storage/log_writer.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <sched.h>

#include <csignal>
#include <fstream>
#include <string>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace {

using namespace gw;
namespace log = core::log;

cache::RedisOptions redis_options(const core::Config& cfg) {
  cache::RedisOptions o;
  o.host = cfg.redis.host;
  o.port = cfg.redis.port;
  o.username = cfg.redis.username;
  o.password = cfg.redis.password;
  o.db = cfg.redis.db;
  o.command_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.redis_timeout);
  o.connect_timeout = std::max(o.command_timeout, std::chrono::milliseconds(1000));
  return o;
}

volatile std::sig_atomic_t g_stop_requested = 0;
extern "C" void request_stop(int) {
  g_stop_requested = 1;
}

enum class Migration { applied, failed, stopped };

// PostgreSQL may still be starting (a pod and its database come up together): retry for a while.
// SIGTERM while waiting ends the process cleanly (the io_context's signal_set is not there yet).
Migration migrate_with_retry(storage::Db& db) {
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  const auto give_up = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto s = db.migrate();
    if (s) return Migration::applied;
    if (s.error().code != core::errc::db_unavailable || Clock::now() > give_up) {
      log::error("database migration failed", {{"error", core::to_string(s.error().code)}});
      return Migration::failed;
    }
    log::warn("database not reachable yet, retrying");
    for (int i = 0; i < 10 && !g_stop_requested; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_stop_requested) return Migration::stopped;
  }
}

// Raises the soft file-descriptor limit to the hard one and derives how many client connections
// fit: each may hold two descriptors (client + upstream), plus a reserve for everything else.
std::size_t connection_limit(const core::Config& cfg) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  const std::size_t reserve = 64 + cfg.db_pool_size;
  const std::size_t fds = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<std::size_t>(rl.rlim_cur);
  const std::size_t fit = fds > reserve + 2 ? (fds - reserve) / 2 : 1;
  const std::size_t limit = std::min(cfg.max_connections, fit);
  log::info("connection limit", {{"max_connections", limit}, {"fd_limit", fds}});
  return limit;
}

// Last resort: a shutdown that has not finished long after the grace period exits anyway,
// without running destructors (so nothing can be used after it was freed).
void start_shutdown_watchdog(std::chrono::duration<double> after) {
  std::thread([after] {
    std::this_thread::sleep_for(after);
    log::error("shutdown did not finish in time; exiting");
    log::flush(std::chrono::seconds(1));
    std::_Exit(1);
  }).detach();
}

// A full log queue drops rows (counted in /metrics); say so, at most once a minute.
void note_dropped_log_row() {
  static std::atomic<std::int64_t> last_warning{0};
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  auto last = last_warning.load(std::memory_order_relaxed);
  if (now - last >= 60 && last_warning.compare_exchange_strong(last, now))
    log::warn("request log queue full: rows are being dropped (see llmgw_log_rows_dropped_total)");
}

// /metrics samples of process-wide parts: the request-log writer and the database pool.
void render_process_metrics(std::string& out, const storage::LogWriter& writer, const storage::Db& db) {
  const auto c = writer.counters();
  auto sample = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  sample("llmgw_log_queue_depth", "gauge", "Request-log rows waiting to be written.", c.queued);
  sample("llmgw_log_rows_written_total", "counter", "Request-log rows written to PostgreSQL.", c.written);
  sample("llmgw_log_rows_dropped_total", "counter", "Request-log rows dropped (queue full or write failed).",
         c.dropped);
  sample("llmgw_log_batches_failed_total", "counter", "Request-log batches that could not be written.",
         c.failed_batches);
  sample("llmgw_db_errors_total", "counter", "Database calls that failed (timeouts, lost connections, ...).",
         db.failures());
  sample("llmgw_stdout_log_lines_dropped_total", "counter",
         "Log lines dropped: stdout could not keep up (buffer full) or a write failed.", log::dropped_lines());
  sample("llmgw_stdout_log_bytes_written_total", "counter", "Log bytes written to stdout.", log::written_bytes());
  sample("llmgw_stdout_log_pending_bytes", "gauge", "Log bytes buffered or being written.", log::pending_bytes());
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", "llmgw_db_call_duration_seconds",
                 "Database call latency, queue wait included.", "llmgw_db_call_duration_seconds");
  render_histogram(out, "llmgw_db_call_duration_seconds", "", db.latency());
}

// WORKERS, or one per CPU this process may use (its affinity mask and cgroup v2 quota).
std::size_t worker_count(const core::Config& cfg) {
  if (cfg.workers > 0) return cfg.workers;
  cpu_set_t set;
  const std::size_t affinity = sched_getaffinity(0, sizeof set, &set) == 0
                                   ? static_cast<std::size_t>(CPU_COUNT(&set))
                                   : std::max(1u, std::thread::hardware_concurrency());
  std::string cpu_max;  // "max 100000" (no quota) or "<quota> <period>"; absent outside cgroup v2
  std::ifstream file("/sys/fs/cgroup/cpu.max");
  std::getline(file, cpu_max);
  return core::usable_cpus(affinity, cpu_max);
}

int run(core::Config cfg) {
  std::signal(SIGPIPE, SIG_IGN);
  cfg.workers = worker_count(cfg);
  const std::size_t max_connections = connection_limit(cfg);
  storage::Db db({cfg.database_url, cfg.db_pool_size, 1024,
                  std::chrono::duration_cast<std::chrono::milliseconds>(cfg.db_timeout), 3});
  switch (migrate_with_retry(db)) {
    case Migration::applied:
      break;
    case Migration::failed:
      return 1;
    case Migration::stopped:
      log::info("stopped before start-up completed");
      return 0;
  }

  auto tls = make_client_tls(cfg);
  if (!tls) {
    log::error("tls setup failed", {{"error", tls.error().message}});
    return 1;
  }
  // The request log: its own thread and connection, a bounded queue; a request never waits for it.
  storage::LogWriter log_writer(storage::LogWriterOptions{
      .url = cfg.database_url,
      .queue_max = cfg.log_queue_max,
      .batch_max = cfg.log_batch_max,
      .flush_interval = std::chrono::milliseconds(cfg.log_flush_ms),
      .retention_days = cfg.log_retention_days,
      .statement_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.db_timeout)});
  Shared shared(cfg, db, **tls, max_connections);
  shared.request_log = [&log_writer](core::RequestLog&& row) {
    if (!log_writer.submit(std::move(row))) note_dropped_log_row();
  };
  shared.render_metrics = [&](std::string& out) { render_process_metrics(out, log_writer, db); };

  const auto ropts = redis_options(cfg);
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::size_t i = 0; i < cfg.workers; ++i) {
    workers.push_back(std::make_unique<Worker>(shared, i, ropts));
    shared.workers.push_back(&workers.back()->app());
  }

  error_code ec;
  const auto address = net::ip::make_address(cfg.listen_host, ec);
  if (ec) {
    log::error("LISTEN_ADDR host must be an IP address", {{"host", cfg.listen_host}});
    return 1;
  }
  // Worker 0 binds first, so a port 0 becomes one real port that the others then share.
  tcp::endpoint endpoint{address, cfg.listen_port};
  for (auto& w : workers) {
    ec = w->listen(endpoint);
    if (ec) {
      log::error("cannot listen",
                 {{"addr", cfg.listen_host + ":" + std::to_string(endpoint.port())}, {"error", ec.message()}});
      return 1;  // nothing asynchronous has started yet
    }
    endpoint = w->local_endpoint();
  }

  // Stopping the database pool blocks (it joins its threads), so it runs beside the workers, once
  // every worker has drained: it fails queued jobs at once and interrupts queries still running
  // after a short grace, which ends every wait a session may still have on a hung PostgreSQL.
  std::thread db_stopper;
  ShutdownCoordinator coordinator(workers.size(),
                                  [&] { db_stopper = std::thread([&db] { db.stop(std::chrono::milliseconds(500)); }); });
  net::io_context& main_ioc = workers.front()->ioc();
  net::signal_set signals(main_ioc, SIGINT, SIGTERM);
  // SIGTERM: not ready any more; after SHUTDOWN_DELAY_SECONDS (or a second signal) every worker
  // stops accepting and drains.
  net::steady_timer delay(main_ioc);
  auto drain_all = [&] {
    error_code ignored;
    signals.cancel(ignored);  // a wait for a second signal would keep worker 0's loop alive
    log::info("shutting down", {{"grace_seconds", cfg.shutdown_grace.count()}});
    start_shutdown_watchdog(cfg.shutdown_grace + std::chrono::seconds(20));
    for (auto& w : workers) w->shutdown(coordinator);
  };
  std::function<void(error_code, int)> on_signal = [&](error_code sec, int) {
    if (sec) return;
    if (shared.stopping.exchange(true) || cfg.shutdown_delay.count() <= 0) {
      delay.cancel();
      if (cfg.shutdown_delay.count() <= 0) drain_all();
      return;
    }
    log::info("stopping: not ready, still serving", {{"delay_seconds", cfg.shutdown_delay.count()}});
    delay.expires_after(to_steady(cfg.shutdown_delay));
    delay.async_wait([&](error_code) { drain_all(); });
    signals.async_wait(on_signal);  // a second signal drains at once
  };
  signals.async_wait(on_signal);
  // A signal that arrived after the migration's handler but before the set existed is not lost.
  if (g_stop_requested) ::raise(SIGTERM);

  for (auto& w : workers) w->start();
  log::info("listening", {{"addr", endpoint.address().to_string() + ":" + std::to_string(endpoint.port())},
                          {"workers", cfg.workers}, {"malloc", LLMGW_MALLOC_NAME}});
  for (std::size_t i = 1; i < workers.size(); ++i) workers[i]->run_in_thread();
  workers.front()->run();  // returns when nothing is left: sessions, background work, waits
  for (auto& w : workers) w->join();
  // Every loop has ended. What one worker posted to another after that (a /metrics sample asked
  // at the last moment) runs now, on this thread, so no handler outlives the loop it belongs to.
  for (int round = 0; round < 3; ++round)
    for (auto& w : workers) {
      w->ioc().restart();
      w->ioc().poll();
    }
  log_writer.stop(std::chrono::seconds(2));  // every request is done: write what is queued
  if (db_stopper.joinable()) db_stopper.join();
  db.stop();  // pool threads finish before the io_contexts they post to are destroyed
  log::info("stopped");
  log::stop(std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << core::config_help();
      return 0;
    }
    if (arg == "--version") {
      std::cout << "llm-gateway 0.1.0\n";
      return 0;
    }
    std::cerr << "llm-gateway: unknown argument '" << arg << "' (see --help)\n";
    return 2;
  }
  auto parsed = core::parse_config([](const char* n) { return std::getenv(n); });
  if (auto* errors = std::get_if<core::ConfigErrors>(&parsed)) {
    for (const auto& m : errors->messages) std::cerr << "llm-gateway: config error: " << m << "\n";
    std::cerr << "llm-gateway: see --help\n";
    return 2;
  }
  const auto& cfg = std::get<core::Config>(parsed);
  log::set_level(cfg.log_level);
  log::start();  // lines go to stdout from a writer thread, never from a worker's
  return run(cfg);
}
