// Model rewrite: byte splice after a SAX validation (what the gateway does) against a Boost.JSON
// DOM round trip (parse, assign, serialize). Prints ns per request body for a small chat request
// and a large one (long conversation). Run: build/bench/micro/rewrite_bench
#include "core/model_rewrite.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace {

std::string chat_body(int messages) {
  std::string b = R"({"model":"gpt-4o","temperature":0.7,"stream":true,"messages":[)";
  for (int i = 0; i < messages; ++i) {
    if (i) b += ',';
    b += R"({"role":"user","content":"Explain the difference between TCP and UDP in two sentences, )"
         R"(with an example \u00e9 of each. Message )" +
         std::to_string(i) + R"("})";
  }
  b += "]}";
  return b;
}

template <class F>
double ns_per_op(F f, int iterations) {
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t sink = 0;
  for (int i = 0; i < iterations; ++i) sink += f();
  const auto t1 = std::chrono::steady_clock::now();
  if (sink == 42) std::puts("");  // keep the work observable
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations;
}

void run(const char* label, const std::string& body, int iterations) {
  const double splice = ns_per_op(
      [&] {
        auto info = core::inspect_inference_body(body);
        return core::rewrite_model(body, *info, "gpt-4o-2024-08-06").size();
      },
      iterations);
  const double dom = ns_per_op(
      [&] {
        auto v = boost::json::parse(body);
        v.as_object()["model"] = "gpt-4o-2024-08-06";
        return boost::json::serialize(v).size();
      },
      iterations);
  std::printf("| %-28s | %8zu | %10.0f | %10.0f | %5.1fx |\n", label, body.size(), splice, dom, dom / splice);
}

}  // namespace

int main() {
  std::printf("| body | bytes | splice ns | DOM ns | DOM/splice |\n|---|---|---|---|---|\n");
  run("chat, 2 messages", chat_body(2), 200000);
  run("chat, 40 messages", chat_body(40), 20000);
  run("chat, 1000 messages", chat_body(1000), 1000);
}
