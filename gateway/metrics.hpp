#pragma once
// Request metrics of one worker, for GET /metrics (Prometheus text format). Written only by the
// worker's own thread, without locks or atomics; a scrape merges every worker's copy. Labels stay
// bounded: API name, configured model and provider names, status class, never key ids or paths,
// and at most kMaxSeries label sets per family (later ones are counted as "other").
#include "core/histogram.hpp"
#include "core/usage.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace gw {

class Metrics {
 public:
  static constexpr std::size_t kMaxSeries = 5000;

  // A finished request. api: chat, completions, embeddings, responses, messages, models, admin,
  // health, metrics, other.
  void request(std::string_view api, std::string_view model, std::string_view provider, unsigned status,
               double seconds, std::optional<double> ttft_seconds);
  // What the request's upstream reported using (api: as for request()).
  void usage(std::string_view api, std::string_view model, std::string_view provider, const core::Usage& u,
             std::optional<double> cost);
  // Both of the above for one finished request, with one lookup of the route's series (`u` null:
  // no usage to count).
  void finished(std::string_view api, std::string_view model, std::string_view provider, unsigned status,
                double seconds, std::optional<double> ttft_seconds, const core::Usage* u,
                std::optional<double> cost);
  // An attempt at a provider that did not give the client its answer: reason is connect, timeout,
  // protocol, status_429, status_5xx. failover: another route was tried after it.
  void upstream_error(std::string_view provider, std::string_view reason, bool failover);
  // Where a key was found: local (this worker's cache), redis, database; or rejected.
  void auth(std::string_view source);
  // A request refused or a route skipped for a limit: rpm, rpd, tpm, max_parallel, token_budget,
  // budget_usd (the key's), provider (a provider's rpm / rpd).
  void rate_limited(std::string_view reason);

  void merge(const Metrics& other);
  // Appends the families of this object (HELP, TYPE, samples).
  void render(std::string& out) const;

 private:
  template <class V>
  struct Family {
    std::map<std::string, V, std::less<>> series;  // rendered label set -> value
    V& at(std::string_view labels);                // allocates only for a new label set
  };
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  // The label set rendered into scratch_ (reused: a request renders several). Valid until the next call.
  std::string_view labels(Labels l);
  std::string scratch_;

  // The series a finished request of one (api, model, provider) writes: looked up (and their label
  // sets rendered) on first use, then reached by pointer. Map nodes never move and series are
  // never erased, so the pointers stay valid for this object's life.
  struct RouteSeries {
    std::array<std::uint64_t*, 7> requests{};  // by status class (kStatusClasses in metrics.cpp)
    core::Histogram* duration = nullptr;
    core::Histogram* ttft = nullptr;
    std::array<std::uint64_t*, 3> tokens{};  // prompt, completion, cached
    double* cost = nullptr;
  };
  // At most kMaxSeries routes; beyond, each request looks its series up anew (`spill`). A copy of
  // the cache starts empty: its pointers lead into the object it was made for.
  struct RouteCache {
    std::map<std::string, RouteSeries, std::less<>> routes;  // length-prefixed api, model, provider
    std::string key;
    RouteSeries spill;
    RouteCache() = default;
    RouteCache(const RouteCache&) {}
    RouteCache& operator=(const RouteCache&) {
      routes.clear();
      return *this;
    }
  };
  RouteSeries& route(std::string_view api, std::string_view model, std::string_view provider);
  void count_request(RouteSeries& r, std::string_view api, std::string_view model, std::string_view provider,
                     unsigned status, double seconds, std::optional<double> ttft_seconds);
  void count_usage(RouteSeries& r, std::string_view model, std::string_view provider, const core::Usage& u,
                   std::optional<double> cost);
  RouteCache cache_;
  Family<std::uint64_t> requests_, tokens_, upstream_errors_, failovers_, auth_, limited_;
  Family<core::Histogram> duration_, ttft_;
  Family<double> cost_;
};

// {a="x",b="y"}, values escaped as the text format wants.
std::string prometheus_labels(std::initializer_list<std::pair<std::string_view, std::string_view>> labels);
void append_prometheus_labels(std::string& out,
                              std::initializer_list<std::pair<std::string_view, std::string_view>> labels);
// Appends one histogram's samples under `name` with `labels` (a rendered set, "{...}" or "").
void render_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const core::Histogram& h);

}  // namespace gw
