#include "gateway/failover.hpp"

#include "core/header_policy.hpp"
#include "core/http1_write.hpp"
#include "core/routing.hpp"
#include "gateway/client_watch.hpp"
#include "gateway/lookup.hpp"

#include <array>
#include <cmath>

namespace gw {
namespace {

using core::errc;
namespace h1 = core::http1;

constexpr std::size_t kCaptureLimit = 64 * 1024;  // a declined answer (an error body) kept to replay
constexpr std::string_view kDefaultAnthropicVersion = "2023-06-01";

// The head a provider receives: our own Host, content headers and request id, the client headers
// the policy lets through, the provider's credentials and extra headers.
std::string upstream_head(const Exchange& ex, const TargetEntry& e, const core::ProviderSecrets& secrets,
                          const ProxyCall& call, std::size_t body_size) {
  std::string out;
  out.reserve(512);
  h1::HeadWriter w(out);
  w.request_line(call.method, core::upstream_request_target(*e.target, call.path_suffix, e.route.api_version));
  w.field("Host", e.target->host_header);
  w.field("User-Agent", "llm-gateway/0.1");
  if (call.info || !call.body.empty()) w.field("Content-Type", "application/json");
  const auto accept = ex.req.header("accept");
  w.field("Accept", accept.empty() ? std::string_view("application/json") : accept);
  w.field("X-Request-Id", ex.request_id);
  if (call.api == providers::Api::anthropic) {
    const auto version = ex.req.header("anthropic-version");
    w.field("anthropic-version", version.empty() ? kDefaultAnthropicVersion : version);
  }
  for (const auto& f : ex.req.head().fields)
    if (core::forward_to_upstream(f.name)) w.field(f.name, f.value);
  e.kind->apply_auth(w, secrets.api_key, call.api);
  for (const auto& [name, value] : secrets.extra_headers) w.field(name, value);
  if (call.method != "GET" && call.method != "HEAD") w.field("Content-Length", std::uint64_t{body_size});
  w.end();
  return out;
}

// Fails over on a retryable head unless this is the last route; keeps the declined answer; counts
// the usage of a complete answer before its last bytes reach the client (so the client's next
// request, on any replica, already sees it).
class AttemptHooks final : public RelayHooks {
 public:
  AttemptHooks(bool last, RelayHooks* observer, RequestLimits* limits, const core::RouteTarget& route)
      : last_(last), observer_(observer), limits_(limits), route_(route) {}
  bool on_head(const h1::ResponseHead& head) override {
    retry_after_ = core::parse_retry_after(head.get("retry-after"), head.get("retry-after-ms"));
    status_ = head.status;
    if (!last_ && core::retryable_status(head.status)) return false;
    return !observer_ || observer_->on_head(head);
  }
  std::size_t capture_declined() override { return kCaptureLimit; }
  void on_data(std::string_view data) override {
    if (observer_) observer_->on_data(data);
  }
  core::UsageScanner* body_scanner() override { return observer_ ? observer_->body_scanner() : nullptr; }
  void on_complete() override {
    if (observer_) observer_->on_complete();
    if (limits_) limits_->finish(usage(), route_.pricing, status_);
  }
  core::Usage usage() {
    const auto* scanner = body_scanner();
    return scanner ? scanner->usage() : core::Usage{};
  }
  std::optional<core::RoutingClock::duration> retry_after() const { return retry_after_; }

 private:
  bool last_;
  RelayHooks* observer_;
  RequestLimits* limits_;
  const core::RouteTarget& route_;
  unsigned status_ = 0;
  std::optional<core::RoutingClock::duration> retry_after_;
};

Response replay(const CapturedResponse& cap) {
  Response res;
  res.status = cap.status;
  res.reason = cap.reason;
  res.content_type.clear();  // it is among the captured headers
  res.headers = cap.headers;
  res.body = cap.body;
  return res;
}

std::int64_t ms_since(Clock::time_point t) {
  return std::llround(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
}

}  // namespace

std::vector<std::size_t> choose_attempts(App& app, const ModelEntry& model, providers::Api api) {
  auto usable = [&](const core::RouteTarget& r) {
    const auto& e = model.targets[static_cast<std::size_t>(&r - model.model.routes.data())];
    return e.kind && e.target && (api != providers::Api::anthropic || e.kind->anthropic_native);
  };
  return core::plan_attempts(model.model, app.health, app.rr, core::RoutingClock::now(), usable);
}

static std::string_view error_reason(core::errc e) {
  switch (e) {
    case core::errc::upstream_timeout:
      return "timeout";
    case core::errc::upstream_protocol:
      return "protocol";
    default:
      return "connect";
  }
}

net::awaitable<Response> forward(App& app, Exchange& ex, const ModelEntry& model,
                                 std::span<const std::size_t> attempts, const ProxyCall& call) {
  ClientWatch watch(app.deadlines, ex.client, ex.session);
  struct InFlight {
    std::size_t& n;
    explicit InFlight(std::size_t& c) : n(++c) {}
    ~InFlight() { --n; }
  } in_flight(app.in_flight);
  std::optional<CapturedResponse> last_answer;  // the latest declined answer
  errc last_error = errc::upstream_unavailable;
  std::string attempts_header;
  bool admitted = false;  // some route's provider had quota (always, without provider limits)
  RequestLimits* const limits = call.limits;

  for (std::size_t i = 0; i < attempts.size(); ++i) {
    const TargetEntry& e = model.targets[attempts[i]];
    const bool last = i + 1 == attempts.size();
    const auto started = Clock::now();
    ex.attempts.push_back({e.route.provider_name, 0, 0, {}});
    if (limits) {
      const bool has_quota = co_await limits->admit_provider(e.route);
      if (!has_quota) {  // the provider is at its rpm / rpd: skipped like a cooling route
        ex.attempts.back().error = "provider_limit";
        continue;
      }
    }
    admitted = true;
    auto& attempt = ex.attempts.back();

    auto secrets = co_await provider_secrets(app, e.route.provider_id);
    if (!secrets) {
      attempt.error = core::to_string(secrets.error().code);
      last_error = secrets.error().code == errc::not_found ? errc::upstream_unavailable : secrets.error().code;
      continue;
    }
    const std::string body = call.info ? core::rewrite_model(call.body, *call.info, e.route.upstream_model, call.edit)
                                       : std::string(call.body);
    const UpstreamRequest up{call.method, upstream_head(ex, e, **secrets, call, body.size()), body};

    attempts_header = std::to_string(i + 1);
    std::vector<h1::Field> extra{h1::Field{"X-LLM-Provider", e.route.provider_name},
                                 h1::Field{"X-LLM-Model", e.route.upstream_model},
                                 h1::Field{"X-LLM-Key-ID", ex.key ? std::string_view(ex.key->id) : ""},
                                 h1::Field{"X-LLM-Attempts", attempts_header}};
    const bool own_rate_headers = limits && limits->key_limited();
    if (own_rate_headers) extra.insert(extra.end(), limits->header_fields().begin(), limits->header_fields().end());
    RelayClient client{ex.client, ex.client_deadline, ex.session, ex.req.version_minor(),
                       ex.keep_alive && !app.closing(), ex.request_id, extra, own_rate_headers, ex.started};
    AttemptHooks hooks(last, call.observer, limits, e.route);

    // A pooled connection found dead before any byte of the request left is replaced once.
    RelayResult r;
    for (int tries = 0; tries < 2; ++tries) {
      auto conn = co_await app.upstream.acquire(*e.target, ex.session);
      if (!conn) {
        r = RelayResult{};
        r.error = conn.error().code;
        break;
      }
      const bool reused = (*conn)->reused;
      r = co_await relay(**conn, up, client, app.cfg, &hooks);
      if (r.upstream_reusable) app.upstream.release(*e.target, std::move(*conn));
      if (!(r.request_unsent && reused && !r.responded && !r.client_gone && !r.declined)) break;
    }
    attempt.ms = ms_since(started);
    attempt.status = r.status;
    if (!r.upstream_request_id.empty()) ex.upstream_request_id = r.upstream_request_id;

    if (ex.session.client_gone && !r.responded) r.client_gone = true;
    if (r.client_gone && !r.responded) {  // nothing to answer: log 499 and close
      if (limits) limits->finish({}, e.route.pricing, 0);
      ex.responded = true;
      ex.status = 499;
      ex.keep_alive = false;
      ex.error = "client_gone";
      co_return Response{};
    }
    const auto now = core::RoutingClock::now();
    if (r.declined) {  // a retryable answer with other routes left: try the next one
      app.health.record_failure(e.route.route_id, now, hooks.retry_after());
      app.metrics.upstream_error(e.route.provider_name, r.status == 429 ? "status_429" : "status_5xx", true);
      if (r.captured) {
        last_answer = std::move(r.captured);
        ex.provider = e.route.provider_name;
        ex.upstream_model = e.route.upstream_model;
      }
      continue;
    }
    if (!r.responded) {  // no answer at all: connect, TLS, timeout, broken head
      app.health.record_failure(e.route.route_id, now);
      app.metrics.upstream_error(e.route.provider_name, error_reason(r.error), !last);
      attempt.error = core::to_string(r.error);
      last_error = r.error;
      continue;
    }
    if (core::retryable_status(r.status)) {
      app.health.record_failure(e.route.route_id, now, hooks.retry_after());
      app.metrics.upstream_error(e.route.provider_name, r.status == 429 ? "status_429" : "status_5xx", false);
    } else {
      app.health.record_success(e.route.route_id);
    }
    ex.provider = e.route.provider_name;
    ex.upstream_model = e.route.upstream_model;
    ex.served = &e.route;
    ex.first_body_at = r.first_body_at;
    ex.responded = true;
    ex.status = r.status;
    ex.keep_alive = r.complete && r.client_keep_alive;
    if (!r.complete) ex.error = r.client_gone ? "client_gone" : "upstream_cut";
    if (limits) limits->finish(hooks.usage(), e.route.pricing, r.status);  // a cut answer: not done yet
    co_return Response{};
  }

  if (limits && !admitted) {  // every route's provider was at its limit
    limits->release();
    ex.error = "provider_limit";
    co_return limits->provider_refusal(ex);
  }
  if (limits) limits->finish({}, {}, last_answer ? last_answer->status : 0);

  // Every route failed. The last answer a provider gave, unchanged, beats a gateway error.
  Response res = last_answer ? replay(*last_answer) : ex.fail({last_error});
  if (!last_answer) ex.error = core::to_string(last_error);
  if (last_answer) {
    res.headers.emplace_back("X-LLM-Provider", ex.provider);
    res.headers.emplace_back("X-LLM-Model", ex.upstream_model);
  }
  if (ex.key) res.headers.emplace_back("X-LLM-Key-ID", ex.key->id);
  res.headers.emplace_back("X-LLM-Attempts", std::to_string(ex.attempts.size()));
  if (!ex.upstream_request_id.empty()) res.headers.emplace_back("X-Upstream-Request-Id", ex.upstream_request_id);
  if (limits) limits->decorate(res);
  co_return res;
}

}  // namespace gw
