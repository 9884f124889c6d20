#include "gateway/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace gw {
namespace {

// Status classes, in the order of a route's cached request series.
constexpr std::array<std::string_view, 7> kStatusClasses{"1xx", "2xx",         "3xx",  "4xx",
                                                         "5xx", "client_gone", "other"};

std::size_t status_class(unsigned status) {
  if (status == 499) return 5;  // the client left before the answer
  const unsigned hundreds = status / 100;
  return hundreds >= 1 && hundreds <= 5 ? hundreds - 1 : 6;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <class V>
void samples(std::string& out, std::string_view name, const std::map<std::string, V, std::less<>>& series) {
  for (const auto& [labels, v] : series)
    fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels, v);
}

// A rendered label set plus one more label (for le="..."): "{a="x"}" -> "{a="x",le="0.5"}".
std::string with_label(std::string_view labels, std::string_view name, std::string_view value) {
  std::string extra = prometheus_labels({{name, value}});
  if (labels.size() <= 2) return extra;
  std::string out(labels.substr(0, labels.size() - 1));
  out.push_back(',');
  out.append(extra.substr(1));
  return out;
}

}  // namespace

std::string prometheus_labels(std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
  std::string out;
  append_prometheus_labels(out, labels);
  return out;
}

void append_prometheus_labels(std::string& out,
                              std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out.append(k).append("=\"");
    const auto plain = [](char c) { return c != '\\' && c != '"' && c != '\n'; };
    if (std::all_of(v.begin(), v.end(), plain)) {  // names and status classes: always
      out.append(v).push_back('"');
      continue;
    }
    for (char c : v) {
      if (c == '\\' || c == '"')
        out.push_back('\\'), out.push_back(c);
      else if (c == '\n')
        out.append("\\n");
      else
        out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
}

void render_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const core::Histogram& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < core::kLatencyBuckets.size(); ++i) {
    cumulative += h.counts[i];
    fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name,
                   with_label(labels, "le", fmt::format("{}", core::kLatencyBuckets[i])), cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name, with_label(labels, "le", "+Inf"),
                 h.count);
  fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n{}_count{} {}\n", name, labels, h.sum, name, labels,
                 h.count);
}

template <class V>
V& Metrics::Family<V>::at(std::string_view labels) {
  auto it = series.find(labels);
  if (it != series.end()) return it->second;
  if (series.size() >= kMaxSeries) return series[prometheus_labels({{"overflow", "other"}})];
  return series.emplace(std::string(labels), V{}).first->second;
}

std::string_view Metrics::labels(Labels l) {
  scratch_.clear();
  append_prometheus_labels(scratch_, l);
  return scratch_;
}

Metrics::RouteSeries& Metrics::route(std::string_view api, std::string_view model,
                                     std::string_view provider) {
  std::string& key = cache_.key;
  key.clear();
  for (const std::string_view part : {api, model, provider}) {
    const auto n = static_cast<std::uint32_t>(part.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n).append(part);
  }
  if (auto it = cache_.routes.find(key); it != cache_.routes.end()) return it->second;
  if (cache_.routes.size() >= kMaxSeries) {
    cache_.spill = RouteSeries{};
    return cache_.spill;
  }
  return cache_.routes.emplace(key, RouteSeries{}).first->second;
}

void Metrics::request(std::string_view api, std::string_view model, std::string_view provider,
                      unsigned status, double seconds, std::optional<double> ttft_seconds) {
  count_request(route(api, model, provider), api, model, provider, status, seconds, ttft_seconds);
}

void Metrics::usage(std::string_view api, std::string_view model, std::string_view provider,
                    const core::Usage& u, std::optional<double> cost) {
  if (u.seen) count_usage(route(api, model, provider), model, provider, u, cost);
}

void Metrics::finished(std::string_view api, std::string_view model, std::string_view provider,
                       unsigned status, double seconds, std::optional<double> ttft_seconds,
                       const core::Usage* u, std::optional<double> cost) {
  RouteSeries& r = route(api, model, provider);
  count_request(r, api, model, provider, status, seconds, ttft_seconds);
  if (u && u->seen) count_usage(r, model, provider, *u, cost);
}

void Metrics::count_request(RouteSeries& r, std::string_view api, std::string_view model,
                            std::string_view provider, unsigned status, double seconds,
                            std::optional<double> ttft_seconds) {
  const std::size_t i = status_class(status);
  if (!r.requests[i])
    r.requests[i] = &requests_.at(
        labels({{"api", api}, {"model", model}, {"provider", provider}, {"status", kStatusClasses[i]}}));
  ++*r.requests[i];
  if (!r.duration)
    r.duration = &duration_.at(labels({{"api", api}, {"model", model}, {"provider", provider}}));
  r.duration->observe(seconds);
  if (!ttft_seconds) return;  // (a route's ttft series exists once a first byte was timed)
  if (!r.ttft) r.ttft = &ttft_.at(labels({{"api", api}, {"model", model}, {"provider", provider}}));
  r.ttft->observe(*ttft_seconds);
}

void Metrics::count_usage(RouteSeries& r, std::string_view model, std::string_view provider,
                          const core::Usage& u, std::optional<double> cost) {
  static constexpr std::array<std::string_view, 3> kTypes{"prompt", "completion", "cached"};
  const std::array<std::int64_t, 3> counts{u.prompt_tokens, u.completion_tokens, u.cached_tokens};
  for (std::size_t i = 0; i < kTypes.size(); ++i) {
    if (counts[i] <= 0) continue;
    if (!r.tokens[i])
      r.tokens[i] = &tokens_.at(labels({{"model", model}, {"provider", provider}, {"type", kTypes[i]}}));
    *r.tokens[i] += static_cast<std::uint64_t>(counts[i]);
  }
  if (!cost) return;
  if (!r.cost) r.cost = &cost_.at(labels({{"model", model}, {"provider", provider}}));
  *r.cost += *cost;
}

void Metrics::upstream_error(std::string_view provider, std::string_view reason, bool failover) {
  ++upstream_errors_.at(labels({{"provider", provider}, {"reason", reason}}));
  if (failover) ++failovers_.at(labels({{"provider", provider}}));
}

void Metrics::auth(std::string_view source) {
  ++auth_.at(labels({{"source", source}}));
}

void Metrics::rate_limited(std::string_view reason) {
  ++limited_.at(labels({{"reason", reason}}));
}

void Metrics::merge(const Metrics& o) {
  for (const auto& [k, v] : o.limited_.series) limited_.at(k) += v;
  for (const auto& [k, v] : o.requests_.series) requests_.at(k) += v;
  for (const auto& [k, v] : o.tokens_.series) tokens_.at(k) += v;
  for (const auto& [k, v] : o.upstream_errors_.series) upstream_errors_.at(k) += v;
  for (const auto& [k, v] : o.failovers_.series) failovers_.at(k) += v;
  for (const auto& [k, v] : o.auth_.series) auth_.at(k) += v;
  for (const auto& [k, v] : o.duration_.series) duration_.at(k).merge(v);
  for (const auto& [k, v] : o.ttft_.series) ttft_.at(k).merge(v);
  for (const auto& [k, v] : o.cost_.series) cost_.at(k) += v;
}

void Metrics::render(std::string& out) const {
  header(out, "llmgw_requests_total", "counter", "Requests by API, model, provider and status class.");
  samples(out, "llmgw_requests_total", requests_.series);
  header(out, "llmgw_request_duration_seconds", "histogram",
         "Time from a request's head to its response's end.");
  for (const auto& [labels, h] : duration_.series)
    render_histogram(out, "llmgw_request_duration_seconds", labels, h);
  header(out, "llmgw_time_to_first_byte_seconds", "histogram",
         "Time from a request's head to the first byte of the response body sent to the client.");
  for (const auto& [labels, h] : ttft_.series)
    render_histogram(out, "llmgw_time_to_first_byte_seconds", labels, h);
  header(out, "llmgw_tokens_total", "counter",
         "Tokens by model, provider and type (prompt, completion, cached).");
  samples(out, "llmgw_tokens_total", tokens_.series);
  header(out, "llmgw_cost_usd_total", "counter",
         "Cost in USD by model and provider (where prices are known).");
  samples(out, "llmgw_cost_usd_total", cost_.series);
  header(out, "llmgw_upstream_errors_total", "counter", "Failed upstream attempts by provider and reason.");
  samples(out, "llmgw_upstream_errors_total", upstream_errors_.series);
  header(out, "llmgw_failovers_total", "counter", "Failovers away from a provider to the next route.");
  samples(out, "llmgw_failovers_total", failovers_.series);
  header(out, "llmgw_auth_lookups_total", "counter",
         "Key lookups by where the answer came from (local cache, redis, database) or rejected.");
  samples(out, "llmgw_auth_lookups_total", auth_.series);
  header(out, "llmgw_rate_limited_total", "counter",
         "Requests refused (or routes skipped, reason provider) because a limit was reached, by limit.");
  samples(out, "llmgw_rate_limited_total", limited_.series);
}

}  // namespace gw
