// The fuzzers' properties (test/fuzz/properties.hpp) over deterministic random mutations of the
// seed corpus, so every build (ASan+UBSan included) checks them, not only the clang fuzz runs.
#include "test/fuzz/properties.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <vector>

namespace {

std::vector<std::string> seeds() {
  return {
      "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
      "HTTP/1.1 529 Overloaded\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
      "5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n",
      "A \r\n0123456789\r\n00\r\n\r\n",
      R"({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi \u00e9"}]})",
      R"({"mod\u0065l" : "a","temperature":0.7,"seed":12345678901234567890,"x":[{"model":1}]})",
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
      "event: message_delta\ndata: {\"usage\":{\"output_tokens\":9}}\r\n\r\nevent: error\ndata: {}\n\n",
  };
}

// Byte flips, insertions of interesting bytes, deletions and splices of two seeds.
std::string mutate(const std::vector<std::string>& pool, std::mt19937_64& rng) {
  static const std::string interesting = "\r\n:;, \t\"\\{}[]0aFz\x00\x7f\xff";
  std::string s = pool[rng() % pool.size()];
  const int edits = 1 + static_cast<int>(rng() % 6);
  for (int i = 0; i < edits; ++i) {
    const std::size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 5) {
      case 0:
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 1:
        s.insert(pos, 1, interesting[rng() % interesting.size()]);
        break;
      case 2:
        if (!s.empty()) s.erase(pos, 1 + rng() % 4);
        break;
      case 3: {
        const auto& other = pool[rng() % pool.size()];
        s.insert(pos, other.substr(rng() % (other.size() + 1)));
        break;
      }
      default:
        s.insert(pos, std::string(rng() % 200, interesting[rng() % interesting.size()]));
    }
  }
  return s;
}

}  // namespace

TEST_CASE("fuzz properties hold for random mutations of the seeds") {
  std::mt19937_64 rng(20261124);
  const auto pool = seeds();
  for (const auto& s : pool) {
    fuzz::http1_heads(s);
    fuzz::chunked_body(s);
    fuzz::inference_body(s);
    fuzz::usage_stream(s);
    fuzz::usage_object(s);
  }
  for (int i = 0; i < 20000; ++i) {
    const std::string input = mutate(pool, rng);
    fuzz::http1_heads(input);
    fuzz::chunked_body(input);
    fuzz::inference_body(input);
    if (i % 4 == 0) fuzz::usage_stream(input);
    fuzz::usage_object(input);
  }
  SUCCEED();
}
