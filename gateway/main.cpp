// llm-gateway: wiring only. Parse config, migrate, connect, listen, drain on SIGTERM.
#include "cache/redis_subscriber.hpp"
#include "core/log.hpp"
#include "gateway/app.hpp"
#include "gateway/server.hpp"
#include "gateway/upstream_pool.hpp"
#include "storage/log_writer.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
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
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", "llmgw_db_call_duration_seconds",
                 "Database call latency, queue wait included.", "llmgw_db_call_duration_seconds");
  render_histogram(out, "llmgw_db_call_duration_seconds", "", db.latency());
}

net::awaitable<void> wait_for_sessions(App& app, Clock::time_point until) {
  net::steady_timer tick(app.ioc);
  while (!app.sessions.empty() && Clock::now() < until) {
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(use_tuple);
  }
}

// SIGTERM: stop accepting, let busy requests finish within the grace period, then cut what is
// left; everything else stops once no session needs it. The io_context then runs out of work and
// run() returns: every coroutine frame is gone before anything is destroyed.
net::awaitable<void> shutdown(App& app, tcp::acceptor& acceptor, std::function<void()> stop_background) {
  log::info("shutting down", {{"grace_seconds", app.cfg.shutdown_grace.count()}});
  start_shutdown_watchdog(app.cfg.shutdown_grace + std::chrono::seconds(20));
  error_code ec;
  acceptor.close(ec);
  begin_drain(app);
  co_await wait_for_sessions(app, Clock::now() + to_steady(app.cfg.shutdown_grace));
  if (!app.sessions.empty()) {
    log::warn("grace period over, closing busy connections", {{"open", app.sessions.size()}});
    force_close(app);
  }
  stop_background();  // Redis waits fail at once; queued database jobs too
  co_await wait_for_sessions(app, Clock::time_point::max());
}

int run(const core::Config& cfg) {
  std::signal(SIGPIPE, SIG_IGN);
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
      .retention_days = cfg.log_retention_days,
      .statement_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.db_timeout)});
  net::io_context ioc{1};
  Shared shared(cfg, db, **tls, max_connections);
  shared.request_log = [&log_writer](core::RequestLog&& row) {
    if (!log_writer.submit(std::move(row))) note_dropped_log_row();
  };
  shared.render_metrics = [&](std::string& out) { render_process_metrics(out, log_writer, db); };
  const auto ropts = redis_options(cfg);
  auto redis = std::make_shared<cache::RedisClient>(ioc.get_executor(), ropts);
  App app(shared, ioc, redis);

  // Every (re)connect to Redis rebuilds it from PostgreSQL: a restarted, empty Redis refills.
  redis->on_connected([&app] { net::co_spawn(app.ioc, app.warm_cache(), net::detached); });
  auto on_message = [&app](std::string_view m) { app.local.invalidate(m); };
  auto on_resubscribed = [&app] { app.local.clear(); };
  auto subscriber = std::make_shared<cache::RedisSubscriber>(ioc.get_executor(), ropts, app.stores.channel(),
                                                             on_message, on_resubscribed);

  tcp::acceptor acceptor(ioc);
  error_code ec;
  const auto address = net::ip::make_address(cfg.listen_host, ec);
  if (ec) {
    log::error("LISTEN_ADDR host must be an IP address", {{"host", cfg.listen_host}});
    return 1;
  }
  const tcp::endpoint endpoint{address, cfg.listen_port};
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    log::error("cannot listen",
               {{"addr", cfg.listen_host + ":" + std::to_string(cfg.listen_port)}, {"error", ec.message()}});
    return 1;  // nothing asynchronous has started yet
  }
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  // Stopping the database pool blocks (it joins its threads), so it runs beside the io_context: it
  // fails queued jobs at once and interrupts queries still running after a short grace, which ends
  // every wait a session may still have on a hung PostgreSQL.
  std::thread db_stopper;
  auto stop_background = [&] {
    app.limits.stop();
    redis->stop();
    subscriber->stop();
    app.upstream.close_idle();
    db_stopper = std::thread([&db] { db.stop(std::chrono::milliseconds(500)); });
  };
  signals.async_wait([&](error_code sec, int) {
    if (!sec) net::co_spawn(ioc, shutdown(app, acceptor, stop_background), net::detached);
  });
  // A signal that arrived after the migration's handler but before the set existed is not lost.
  if (g_stop_requested) ::raise(SIGTERM);

  redis->start();
  subscriber->start();
  const auto bound = acceptor.local_endpoint();
  log::info("listening", {{"addr", bound.address().to_string() + ":" + std::to_string(bound.port())}});
  net::co_spawn(ioc, accept_loop(app, acceptor), net::detached);
  net::co_spawn(ioc, app.limits.maintain(redis, cfg.redis_prefix), net::detached);

  ioc.run();  // returns when nothing is left: sessions, background work, waits
  log_writer.stop(std::chrono::seconds(2));  // every request is done: write what is queued
  if (db_stopper.joinable()) db_stopper.join();
  db.stop();  // pool threads finish before the io_context they post to is destroyed
  log::info("stopped");
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
  return run(cfg);
}
