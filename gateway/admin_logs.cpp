// GET /admin/logs, GET /admin/stats: the request log (PostgreSQL) for operators. Thin: query
// parameters parsed here, the queries are storage::LogRepo's.
#include "core/timestamp.hpp"
#include "gateway/handlers.hpp"
#include "storage/log_repo.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace gw {
namespace {

using core::errc;
namespace json = boost::json;

// Query parameters, decoded; unknown names are refused so typos do not silently match everything.
struct Query {
  std::map<std::string, std::string, std::less<>> values;
  std::string unknown;
};

Query query_of(const Request& req, std::initializer_list<std::string_view> allowed) {
  Query q;
  auto u = boost::urls::parse_origin_form(req.target());
  if (!u) return q;
  for (const auto& p : u->params()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || p.key == a;
    if (!ok && q.unknown.empty()) q.unknown = p.key;
    q.values[std::string(p.key)] = std::string(p.value);
  }
  return q;
}

core::Error bad(std::string_view param, std::string message) {
  return {errc::invalid_request, std::move(message), std::string(param)};
}

core::Result<std::optional<std::int64_t>> time_param(const Query& q, std::string_view name) {
  auto it = q.values.find(name);
  if (it == q.values.end() || it->second.empty()) return std::optional<std::int64_t>{};
  auto us = core::parse_timestamp_us(it->second);
  if (!us) return bad(name, "'" + std::string(name) + "' must be an RFC 3339 time, a date or Unix seconds.");
  return std::optional<std::int64_t>{*us};
}

core::Result<std::int64_t> int_param(const Query& q, std::string_view name, std::int64_t dflt, std::int64_t min,
                                     std::int64_t max) {
  auto it = q.values.find(name);
  if (it == q.values.end() || it->second.empty()) return dflt;
  std::int64_t v = 0;
  const auto& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < min || v > max)
    return bad(name, "'" + std::string(name) + "' must be an integer from " + std::to_string(min) + " to " +
                         std::to_string(max) + ".");
  return v;
}

json::value opt(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}
json::value opt(const std::string& s) {
  return s.empty() ? json::value(nullptr) : json::value(s);
}

json::object log_object(const storage::LogEntry& e) {
  const auto& r = e.row;
  return {{"id", e.id},
          {"created_at", e.created_at},
          {"request_id", r.request_id},
          {"upstream_request_id", opt(r.upstream_request_id)},
          {"key_id", opt(r.key_id)},
          {"model", opt(r.model)},
          {"provider", opt(r.provider)},
          {"upstream_model", opt(r.upstream_model)},
          {"status", r.status},
          {"error_code", opt(r.error_code)},
          {"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"cached_tokens", r.cached_tokens},
          {"cache_creation_tokens", r.cache_creation_tokens},
          {"total_tokens", r.total_tokens},
          {"cost", opt(r.cost)},
          {"latency_ms", r.latency_ms},
          {"ttft_ms", opt(r.ttft_ms)},
          {"is_stream", r.is_stream},
          {"attempts", r.attempts},
          {"client_addr", opt(r.client_addr)}};
}

#define TRY_OR_RESPOND(var, expr) \
  auto var = (expr);              \
  if (!var) co_return ex.fail(std::move(var).error())

}  // namespace

net::awaitable<Response> admin_logs(App& app, Exchange& ex) {
  const Query q = query_of(ex.req, {"page", "per_page", "key_id", "model", "provider", "status", "from", "to"});
  if (!q.unknown.empty()) co_return ex.fail(bad(q.unknown, "Unknown parameter '" + q.unknown + "'."));
  storage::LogQuery lq;
  TRY_OR_RESPOND(page, int_param(q, "page", 1, 1, 1'000'000'000));
  TRY_OR_RESPOND(per_page, int_param(q, "per_page", 50, 1, storage::kMaxPerPage));
  TRY_OR_RESPOND(from, time_param(q, "from"));
  TRY_OR_RESPOND(to, time_param(q, "to"));
  lq.page = *page;
  lq.per_page = static_cast<int>(*per_page);
  lq.from_us = *from;
  lq.to_us = *to;
  for (auto [name, field] : {std::pair{"key_id", &lq.key_id}, {"model", &lq.model}, {"provider", &lq.provider}})
    if (auto it = q.values.find(name); it != q.values.end() && !it->second.empty()) *field = it->second;
  if (auto it = q.values.find("status"); it != q.values.end() && !it->second.empty()) {
    lq.status = storage::parse_status_filter(it->second);
    if (!lq.status) co_return ex.fail(bad("status", "'status' must be a code such as 429 or a class such as 5xx."));
  }
  storage::LogRepo repo(app.db);
  auto result = co_await repo.logs(std::move(lq));
  if (!result) co_return ex.fail(result.error());
  json::array data;
  for (const auto& e : result->rows) data.push_back(log_object(e));
  co_return json_response(200, json::serialize(json::object{
                                   {"data", std::move(data)}, {"total", result->total}, {"page", *page}, {"per_page", *per_page}}));
}

net::awaitable<Response> admin_stats(App& app, Exchange& ex) {
  const Query q = query_of(ex.req, {"from", "to", "group_by"});
  if (!q.unknown.empty()) co_return ex.fail(bad(q.unknown, "Unknown parameter '" + q.unknown + "'."));
  TRY_OR_RESPOND(from, time_param(q, "from"));
  TRY_OR_RESPOND(to, time_param(q, "to"));
  const auto group_text = q.values.contains("group_by") ? q.values.find("group_by")->second : std::string("model");
  const auto group = storage::parse_stats_group(group_text);
  if (!group) co_return ex.fail(bad("group_by", "'group_by' must be key, model, provider or day."));
  // Default range: the last 7 days up to now.
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::int64_t to_us = to->value_or(now_us + 1);
  const std::int64_t from_us = from->value_or(to_us - std::int64_t(7) * 86400 * 1000000);
  storage::LogRepo repo(app.db);
  auto result = co_await repo.stats(from_us, to_us, *group);
  if (!result) co_return ex.fail(result.error());
  json::array data;
  for (const auto& r : *result)
    data.push_back(json::object{{"group", r.group ? json::value(*r.group) : json::value(nullptr)},
                                {"requests", r.requests},
                                {"errors", r.errors},
                                {"prompt_tokens", r.prompt_tokens},
                                {"completion_tokens", r.completion_tokens},
                                {"total_tokens", r.total_tokens},
                                {"cost", opt(r.cost)},
                                {"p50_latency_ms", opt(r.p50_latency_ms)},
                                {"p95_latency_ms", opt(r.p95_latency_ms)},
                                {"p50_ttft_ms", opt(r.p50_ttft_ms)},
                                {"p95_ttft_ms", opt(r.p95_ttft_ms)}});
  co_return json_response(200, json::serialize(json::object{{"data", std::move(data)}}));
}

static json::object usage_object(const storage::UsageTotals& t) {
  return {{"requests", t.requests},
          {"errors", t.errors},
          {"prompt_tokens", t.prompt_tokens},
          {"completion_tokens", t.completion_tokens},
          {"cached_tokens", t.cached_tokens},
          {"total_tokens", t.total_tokens},
          {"cost", t.cost}};
}

// The key's JSON (as rendered by core::to_json) with its usage today, this month and in total.
// Budget use: Redis's count is the live one; PostgreSQL's (fed by the log writer) stands in when
// Redis has none or is down.
static net::awaitable<json::value> budget_object(App& app, const core::UserKey& key) {
  const auto& l = key.limits;
  if (!l.token_budget && !l.budget_usd) co_return nullptr;
  std::optional<core::LocalLimiter::Used> used;
  if (auto live = co_await app.limits.shared.used(key.id); live) used = *live;
  if (!used) {
    auto stored = co_await app.keys.budget_usage(key.id);
    if (!stored) co_return nullptr;
    used = core::LocalLimiter::Used{stored->first, stored->second};
  }
  json::object b;
  b["tokens_used"] = used->tokens;
  b["usd_used"] = static_cast<double>(used->micro_usd) / 1e6;
  if (l.token_budget) b["tokens_left"] = std::max<std::int64_t>(0, *l.token_budget - used->tokens);
  if (l.budget_usd)
    b["usd_left"] = static_cast<double>(std::max<std::int64_t>(0, core::to_micro_usd(*l.budget_usd) - used->micro_usd)) / 1e6;
  co_return b;
}

net::awaitable<std::string> with_key_usage(App& app, std::string key_json, const core::UserKey& key) {
  storage::LogRepo repo(app.db);
  auto usage = co_await repo.key_usage(key.id, std::chrono::system_clock::now());
  json::error_code ec;
  auto v = json::parse(key_json, ec);
  if (ec || !v.is_object()) co_return key_json;
  if (usage)
    v.as_object()["usage"] = json::object{{"today", usage_object(usage->today)},
                                          {"month", usage_object(usage->month)},
                                          {"total", usage_object(usage->total)}};
  else
    v.as_object()["usage"] = nullptr;  // the log is unreachable: the key itself still shows
  if (key.limits.token_budget || key.limits.budget_usd) v.as_object()["budget"] = co_await budget_object(app, key);
  co_return json::serialize(v);
}

}  // namespace gw
