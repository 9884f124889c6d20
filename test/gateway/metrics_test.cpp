// Per-worker request metrics (gateway/metrics.*): a finished request's series are looked up once
// per (api, model, provider) and then reached by pointer. What /metrics renders must be what the
// label sets say, whatever the order of requests, for copies too, and past the series bound.
#include "gateway/metrics.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using gw::Metrics;

std::string rendered(const Metrics& m) {
  std::string out;
  m.render(out);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

core::Usage usage(std::int64_t prompt, std::int64_t completion, std::int64_t cached) {
  core::Usage u;
  u.seen = true;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  u.cached_tokens = cached;
  return u;
}

// The sum of every sample of `name` (the lines "name{...} value").
double sum_of(const std::string& text, const std::string& name) {
  double total = 0;
  std::size_t at = 0;
  while ((at = text.find("\n" + name + "{", at)) != std::string::npos) {
    const auto end = text.find('\n', at + 1);
    const auto space = text.rfind(' ', end);
    total += std::stod(text.substr(space + 1, end - space - 1));
    at = end;
  }
  return total;
}

}  // namespace

TEST_CASE("metrics: a route's requests, durations, first bytes, tokens and cost land in their series") {
  Metrics m;
  m.request("chat", "m1", "p1", 200, 0.01, 0.005);
  m.request("chat", "m1", "p1", 201, 0.02, std::nullopt);
  m.request("chat", "m1", "p1", 499, 0.03, std::nullopt);
  m.request("chat", "m1", "p1", 502, 0.04, std::nullopt);
  m.request("chat", "m1", "p1", 0, 0.05, std::nullopt);
  m.request("messages", "m1", "p1", 200, 0.06, std::nullopt);
  m.request("health", "", "", 200, 0.001, std::nullopt);
  m.usage("chat", "m1", "p1", usage(10, 5, 0), 0.25);
  m.usage("messages", "m1", "p1", usage(1, 0, 3), std::nullopt);  // same token series, other api
  m.usage("chat", "m1", "p1", core::Usage{}, 1.0);                // not seen: nothing counts
  const std::string text = rendered(m);
  CHECK(has_line(text, R"(llmgw_requests_total{api="chat",model="m1",provider="p1",status="2xx"} 2)"));
  CHECK(
      has_line(text, R"(llmgw_requests_total{api="chat",model="m1",provider="p1",status="client_gone"} 1)"));
  CHECK(has_line(text, R"(llmgw_requests_total{api="chat",model="m1",provider="p1",status="5xx"} 1)"));
  CHECK(has_line(text, R"(llmgw_requests_total{api="chat",model="m1",provider="p1",status="other"} 1)"));
  CHECK(has_line(text, R"(llmgw_requests_total{api="messages",model="m1",provider="p1",status="2xx"} 1)"));
  CHECK(has_line(text, R"(llmgw_requests_total{api="health",model="",provider="",status="2xx"} 1)"));
  CHECK(has_line(text, R"(llmgw_request_duration_seconds_count{api="chat",model="m1",provider="p1"} 5)"));
  CHECK(has_line(text, R"(llmgw_time_to_first_byte_seconds_count{api="chat",model="m1",provider="p1"} 1)"));
  // A route whose first byte was never timed has no first-byte series.
  CHECK(text.find(R"(llmgw_time_to_first_byte_seconds_count{api="messages")") == std::string::npos);
  CHECK(has_line(text, R"(llmgw_tokens_total{model="m1",provider="p1",type="prompt"} 11)"));
  CHECK(has_line(text, R"(llmgw_tokens_total{model="m1",provider="p1",type="completion"} 5)"));
  CHECK(has_line(text, R"(llmgw_tokens_total{model="m1",provider="p1",type="cached"} 3)"));
  CHECK(has_line(text, R"(llmgw_cost_usd_total{model="m1",provider="p1"} 0.25)"));
}

TEST_CASE("metrics: names that differ only where one ends and the next begins are different routes") {
  Metrics m;
  m.request("chat", "ab", "c", 200, 0.01, std::nullopt);
  m.request("chat", "a", "bc", 200, 0.01, std::nullopt);
  const std::string text = rendered(m);
  CHECK(has_line(text, R"(llmgw_requests_total{api="chat",model="ab",provider="c",status="2xx"} 1)"));
  CHECK(has_line(text, R"(llmgw_requests_total{api="chat",model="a",provider="bc",status="2xx"} 1)"));
}

TEST_CASE("metrics: a copy counts on its own series, never on the original's") {
  Metrics a;
  a.request("chat", "m", "p", 200, 0.01, 0.001);
  a.usage("chat", "m", "p", usage(1, 1, 0), 0.5);
  const std::string before = rendered(a);
  Metrics b = a;  // as /metrics copies a worker's metrics
  b.request("chat", "m", "p", 200, 0.01, 0.001);
  b.usage("chat", "m", "p", usage(1, 1, 0), 0.5);
  CHECK(rendered(a) == before);
  CHECK(has_line(rendered(b), R"(llmgw_requests_total{api="chat",model="m",provider="p",status="2xx"} 2)"));
  Metrics c;
  c.request("chat", "m", "p", 200, 0.01, std::nullopt);
  c = a;  // assigned over: c's own cached pointers must not survive into a's series
  c.request("chat", "m", "p", 200, 0.01, std::nullopt);
  CHECK(rendered(a) == before);
  CHECK(has_line(rendered(c), R"(llmgw_requests_total{api="chat",model="m",provider="p",status="2xx"} 2)"));
}

TEST_CASE("metrics: past the series bound every request is still counted, in the overflow series") {
  Metrics m;
  const int routes = static_cast<int>(Metrics::kMaxSeries) + 25;
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < routes; ++i)
      m.request("chat", "model-" + std::to_string(i), "p", 200, 0.01, std::nullopt);
  const std::string text = rendered(m);
  CHECK(sum_of(text, "llmgw_requests_total") == 2.0 * routes);
  CHECK(has_line(text, R"(llmgw_requests_total{overflow="other"} 50)"));
}
