// GET /metrics: Prometheus text format. Open, or Bearer METRICS_TOKEN when set.
#include "core/keys.hpp"
#include "gateway/handlers.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace gw {
namespace {

void gauge(std::string& out, std::string_view name, std::string_view help, double value) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, value);
}

void counter(std::string& out, std::string_view name, std::string_view help, std::uint64_t value) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, value);
}

double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double open_fds() {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++n;
  return static_cast<double>(n);
}

}  // namespace

net::awaitable<Response> metrics(App& app, Exchange& ex) {
  if (!app.cfg.metrics_token.empty()) {
    const auto token = core::bearer_token(ex.req.header("authorization"));
    if (token.empty() || !core::constant_time_equal(token, app.cfg.metrics_token))
      co_return ex.fail({core::errc::invalid_api_key, "Invalid metrics token."});
  }
  std::string out;
  out.reserve(16 * 1024);
  app.metrics.render(out);  // one worker today; with several, each worker's copy is merged first
  gauge(out, "llmgw_active_connections", "Open client connections.",
        static_cast<double>(app.shared.connections.load(std::memory_order_relaxed)));
  gauge(out, "llmgw_active_upstream_requests", "Requests waiting for or streaming an upstream answer.",
        static_cast<double>(app.in_flight));
  gauge(out, "llmgw_buffered_request_body_bytes", "Request body bytes held in memory.",
        static_cast<double>(app.shared.body_budget.in_use()));
  counter(out, "llmgw_redis_errors_total", "Redis commands that failed or timed out.", app.redis->failures());
  gauge(out, "llmgw_rate_limiter_fallback",
        "1 while Redis cannot be reached and each worker enforces rate limits on its own.",
        app.limits.fallback || !app.redis->connected() ? 1.0 : 0.0);
  counter(out, "llmgw_rate_limiter_local_admissions_total", "Admissions decided without Redis (the fallback).",
          app.limits.local_admissions);
  gauge(out, "llmgw_live_replicas", "Gateway processes seen alive in the last 30 s (Redis heartbeats).",
        static_cast<double>(app.limits.live_replicas));
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", "llmgw_redis_command_duration_seconds",
                 "Redis command latency.", "llmgw_redis_command_duration_seconds");
  render_histogram(out, "llmgw_redis_command_duration_seconds", "", app.redis->latency());
  if (app.shared.render_metrics) app.shared.render_metrics(out);
  gauge(out, "llmgw_uptime_seconds", "Seconds since the gateway started.",
        std::chrono::duration<double>(Clock::now() - app.shared.started).count());
  gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", resident_bytes());
  gauge(out, "process_open_fds", "Open file descriptors.", open_fds());
  Response res = json_response(200, std::move(out));
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  co_return res;
}

}  // namespace gw
