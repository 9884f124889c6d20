// GET /metrics: Prometheus text format. Open, or Bearer METRICS_TOKEN when set.
#include "core/keys.hpp"
#include "gateway/deadline.hpp"
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

// What one worker contributes to /metrics, copied on its own thread.
struct WorkerSample {
  Metrics metrics;
  double in_flight = 0;
  bool limiter_fallback = false;
  std::uint64_t local_admissions = 0;
  std::int64_t live_replicas = 1;
  std::uint64_t redis_failures = 0;
  core::Histogram redis_latency;
  double upstream_open = 0, upstream_idle = 0, upstream_queued = 0;
  std::uint64_t upstream_queue_waits = 0, upstream_queue_timeouts = 0;
};

WorkerSample sample(const App& a) {
  return {.metrics = a.metrics,
          .in_flight = static_cast<double>(a.in_flight),
          .limiter_fallback = a.limits.fallback || !a.redis->connected(),
          .local_admissions = a.limits.local_admissions,
          .live_replicas = a.limits.live_replicas,
          .redis_failures = a.redis->failures(),
          .redis_latency = a.redis->latency(),
          .upstream_open = static_cast<double>(a.upstream.open_connections()),
          .upstream_idle = static_cast<double>(a.upstream.idle_connections()),
          .upstream_queued = static_cast<double>(a.upstream.queued()),
          .upstream_queue_waits = a.upstream.queue_waits(),
          .upstream_queue_timeouts = a.upstream.queue_timeouts()};
}

net::awaitable<WorkerSample> sample_here(App* a) {
  co_return sample(*a);
}

// Hops to another worker's thread and back.
net::awaitable<WorkerSample> sample_of(App* a) {
  co_return co_await net::co_spawn(a->ioc, sample_here(a), net::use_awaitable);
}

// Every worker's sample, merged. A worker that is shutting down (or does not answer within a
// second) is left out rather than waited for.
net::awaitable<WorkerSample> process_sample(App& self) {
  WorkerSample total = sample(self);
  total.live_replicas = self.limits.live_replicas;
  for (App* w : self.shared.workers) {
    if (w == &self || !w->serving.load()) continue;
    auto got = co_await with_deadline(sample_of(w), std::chrono::seconds(1));
    if (!got) continue;
    total.metrics.merge(got->metrics);
    total.in_flight += got->in_flight;
    total.limiter_fallback = total.limiter_fallback || got->limiter_fallback;
    total.local_admissions += got->local_admissions;
    total.live_replicas = std::max(total.live_replicas, got->live_replicas);
    total.redis_failures += got->redis_failures;
    total.redis_latency.merge(got->redis_latency);
    total.upstream_open += got->upstream_open;
    total.upstream_idle += got->upstream_idle;
    total.upstream_queued += got->upstream_queued;
    total.upstream_queue_waits += got->upstream_queue_waits;
    total.upstream_queue_timeouts += got->upstream_queue_timeouts;
  }
  co_return total;
}

}  // namespace

net::awaitable<Response> metrics(App& app, Exchange& ex) {
  if (!app.cfg.metrics_token.empty()) {
    const auto token = core::bearer_token(ex.req.header("authorization"));
    if (token.empty() || !core::constant_time_equal(token, app.cfg.metrics_token))
      co_return ex.fail({core::errc::invalid_api_key, "Invalid metrics token."});
  }
  const WorkerSample all = co_await process_sample(app);
  std::string out;
  out.reserve(16 * 1024);
  all.metrics.render(out);
  gauge(out, "llmgw_workers", "Event-loop threads of this process.", static_cast<double>(app.shared.workers.size()));
  gauge(out, "llmgw_active_connections", "Open client connections.",
        static_cast<double>(app.shared.connections.load(std::memory_order_relaxed)));
  gauge(out, "llmgw_active_upstream_requests", "Requests waiting for or streaming an upstream answer.", all.in_flight);
  gauge(out, "llmgw_upstream_connections", "Upstream connections open (idle, leased or connecting).", all.upstream_open);
  gauge(out, "llmgw_upstream_idle_connections", "Upstream keep-alive connections waiting for reuse.", all.upstream_idle);
  gauge(out, "llmgw_upstream_queued_requests", "Requests waiting for a connection to a host at its cap.",
        all.upstream_queued);
  counter(out, "llmgw_upstream_queue_waits_total", "Requests that waited for a connection to a host at its cap.",
          all.upstream_queue_waits);
  counter(out, "llmgw_upstream_queue_timeouts_total",
          "Requests refused (503) because a host stayed at its connection cap.", all.upstream_queue_timeouts);
  gauge(out, "llmgw_buffered_request_body_bytes", "Request body bytes held in memory.",
        static_cast<double>(app.shared.body_budget.in_use()));
  counter(out, "llmgw_redis_errors_total", "Redis commands that failed or timed out.", all.redis_failures);
  gauge(out, "llmgw_rate_limiter_fallback",
        "1 while Redis cannot be reached and each worker enforces rate limits on its own.",
        all.limiter_fallback ? 1.0 : 0.0);
  counter(out, "llmgw_rate_limiter_local_admissions_total", "Admissions decided without Redis (the fallback).",
          all.local_admissions);
  gauge(out, "llmgw_live_replicas", "Gateway processes seen alive in the last 30 s (Redis heartbeats).",
        static_cast<double>(all.live_replicas));
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", "llmgw_redis_command_duration_seconds",
                 "Redis command latency.", "llmgw_redis_command_duration_seconds");
  render_histogram(out, "llmgw_redis_command_duration_seconds", "", all.redis_latency);
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
