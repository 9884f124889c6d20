#include "core/usage.hpp"
#include "core/limits.hpp"
#include "core/model_rewrite.hpp"
#include "core/sse.hpp"

#include <catch2/catch.hpp>

#include <limits>
#include <random>
#include <vector>

using core::Usage;
using core::UsageFormat;
using core::UsageScanner;

namespace {

// Runs `body` through a scanner in reads of `step` bytes; returns what was forwarded.
std::string run(UsageScanner& s, std::string_view body, std::size_t step) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); i += step)
    s.process(body.substr(i, step), [&](std::string_view b) { out.append(b); });
  s.finish([&](std::string_view b) { out.append(b); });
  return out;
}

const std::string kChunk1 =
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null})"
    "\n\n";
const std::string kChunk2 =
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})"
    "\n\n";
const std::string kUsageChunk =
    R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}}})"
    "\n\n";
const std::string kDone = "data: [DONE]\n\n";

}  // namespace

TEST_CASE("sse: events split at any byte, CRLF too, and oversized events are passed on in pieces") {
  const std::string stream = "event: a\ndata: 1\n\nevent: b\r\ndata: two\r\n\r\ndata: 3\n\n";
  for (std::size_t step : {std::size_t(1), std::size_t(3), std::size_t(100)}) {
    core::SseSplitter sse;
    std::vector<std::string> events, data;
    for (std::size_t i = 0; i < stream.size(); i += step)
      sse.feed(std::string_view(stream).substr(i, step), [&](const core::SseEvent& e) {
        events.emplace_back(e.event);
        data.emplace_back(e.data);
      });
    CHECK(events == std::vector<std::string>{"a", "b", ""});
    CHECK(data == std::vector<std::string>{"1", "two", "3"});
  }
  core::SseSplitter small(10);
  std::string seen;
  int oversized = 0;
  const std::string big = "data: " + std::string(50, 'x') + "\n\ndata: ok\n\n";
  for (std::size_t i = 0; i < big.size(); i += 7)
    small.feed(std::string_view(big).substr(i, 7), [&](const core::SseEvent& e) {
      seen.append(e.bytes);
      oversized += e.oversized ? 1 : 0;
      if (!e.oversized) CHECK(e.data == "ok");
    });
  CHECK(seen == big);
  CHECK(oversized >= 1);
  CHECK(small.pending().empty());
}

TEST_CASE("json scan: a top-level member's value is captured across reads, nested look-alikes ignored") {
  const std::string body =
      R"({"id":"x","choices":[{"message":{"usage":"no"}}],"text":"\"usage\": {}","usage":{"prompt_tokens":7,"completion_tokens":2},"z":1})";
  for (std::size_t step : {std::size_t(1), std::size_t(5), std::size_t(1000)}) {
    core::TopLevelMember m("usage");
    for (std::size_t i = 0; i < body.size(); i += step) m.feed(std::string_view(body).substr(i, step));
    REQUIRE(m.found());
    CHECK(m.value() == R"({"prompt_tokens":7,"completion_tokens":2})");
  }
  core::TopLevelMember scalar("n");
  scalar.feed(R"({"n" : 42 ,"m":1})");
  CHECK(scalar.value() == "42");
  core::TopLevelMember bounded("usage", 8);
  bounded.feed(R"({"usage":{"prompt_tokens":7}})");
  CHECK_FALSE(bounded.found());
  // The bound is the value's length: exactly max_value bytes fit, one more does not, split or not.
  for (std::size_t step : {std::size_t(1), std::size_t(3), std::size_t(100)}) {
    const std::string text = R"({"a":"x","usage":"abcdef","b":1})";  // the value is 8 bytes
    core::TopLevelMember fits("usage", 8), over("usage", 7);
    for (std::size_t i = 0; i < text.size(); i += step) {
      fits.feed(std::string_view(text).substr(i, step));
      over.feed(std::string_view(text).substr(i, step));
    }
    CHECK(fits.value() == "\"abcdef\"");
    CHECK_FALSE(over.found());
  }
  const auto r = core::locate_member(R"({"a":[1,{"b":2}], "stream_options" : {"include_usage":false}})",
                                     "stream_options");
  REQUIRE(r.found());
  CHECK(r.end - r.begin == std::string_view(R"({"include_usage":false})").size());
}

// locate_members reads once what locate_member finds key by key (estimate_tokens asks for three).
TEST_CASE("json scan: locate_members finds what locate_member finds, in one pass") {
  const std::string_view keys[] = {"max_tokens", "max_completion_tokens", "max_output_tokens", "model"};
  const std::string_view bodies[] = {
      R"({"model":"m","max_tokens":5,"max_completion_tokens":7})",
      R"({"messages":[{"max_tokens":1}],"max_output_tokens":9, "model" : "x"})",
      R"({"a":{"max_tokens":2},"max_tokens":3,"max_tokens":4})",  // nested and repeated: the first top-level
                                                                  // one
      R"({"max_\u0074okens":6,"s":"\"max_tokens\":8"})",  // an escaped key; a key inside a string is none
      R"({})",
      R"({"model":null,"max_completion_tokens":[1,2,{"x":"}"}],"max_output_tokens":-1})",
      R"(  {  "max_output_tokens"  :  12  ,  "max_tokens":{"a":[]}  }  )",
  };
  for (const auto body : bodies) {
    INFO(body);
    core::Range all[std::size(keys)];
    core::locate_members(body, keys, all);
    for (std::size_t k = 0; k < std::size(keys); ++k) {
      const auto one = core::locate_member(body, keys[k]);
      INFO(keys[k]);
      CHECK(all[k].begin == one.begin);
      CHECK(all[k].end == one.end);
    }
  }
  // estimate_tokens takes the first key, in its order, whose value is a positive integer.
  CHECK(core::estimate_tokens(R"({"max_output_tokens":9,"max_tokens":-1})", 256) == 10 + 9);
}

TEST_CASE("json scan: reading a whole buffer finds what reading it byte by byte finds") {
  // feed() skips string contents in bulk; one byte at a time never can. Random JSON-ish text made of
  // the characters that matter (quotes, escapes, nesting, the key itself) must give the same answer.
  std::mt19937 rng(11);
  const std::vector<std::string> atoms = {"{",  "}",   "[",          "]",          ",",         ":",
                                          "\"", "\\",  "\\\"",       "usage",      "\"usage\"", " ",
                                          "1",  "abc", "\"usage\":", "{\"usage\":"};
  for (int round = 0; round < 5000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) text += atoms[rng() % atoms.size()];
    core::TopLevelMember whole("usage", 64), bytewise("usage", 64);
    whole.feed(text);
    for (char c : text) bytewise.feed(std::string_view(&c, 1));
    INFO(text);
    REQUIRE(whole.found() == bytewise.found());
    if (whole.found()) CHECK(whole.value() == bytewise.value());
  }
}

TEST_CASE("usage: OpenAI stream, the client asked: everything forwarded, usage read") {
  const std::string stream = kChunk1 + kChunk2 + kUsageChunk + kDone;
  for (std::size_t step : {std::size_t(1), std::size_t(17), std::size_t(4096)}) {
    UsageScanner s(UsageFormat::openai_stream, false);
    CHECK(run(s, stream, step) == stream);
    CHECK(s.usage().seen);
    CHECK(s.usage().prompt_tokens == 12);
    CHECK(s.usage().completion_tokens == 3);
    CHECK(s.usage().cached_tokens == 4);
    CHECK(s.usage().total_tokens == 15);
  }
}

TEST_CASE(
    "usage: OpenAI stream, the client did not ask: exactly the usage chunk is dropped, split anywhere") {
  const std::string stream = kChunk1 + kChunk2 + kUsageChunk + kDone;
  for (std::size_t step = 1; step <= stream.size(); step += (step < 40 ? 1 : 37)) {
    UsageScanner s(UsageFormat::openai_stream, true);
    CHECK(run(s, stream, step) == kChunk1 + kChunk2 + kDone);
    CHECK(s.usage().completion_tokens == 3);
  }
  // Usage on a chunk that also carries choices is not dropped (the client reads choices there).
  const std::string final_with_usage =
      R"(data: {"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})"
      "\n\n";
  UsageScanner s(UsageFormat::openai_stream, true);
  CHECK(run(s, kChunk1 + final_with_usage + kDone, 5) == kChunk1 + final_with_usage + kDone);
  CHECK(s.usage().total_tokens == 2);
}

TEST_CASE("usage: whole events are forwarded at once, only a split event waits") {
  UsageScanner s(UsageFormat::openai_stream, true);
  std::string out;
  auto fwd = [&](std::string_view b) { out.append(b); };
  s.process(kChunk1 + kChunk2.substr(0, 10), fwd);
  CHECK(out == kChunk1);
  s.process(kChunk2.substr(10), fwd);
  CHECK(out == kChunk1 + kChunk2);
}

TEST_CASE("usage: OpenAI error chunk inside a 200 stream") {
  UsageScanner s(UsageFormat::openai_stream, false);
  run(s,
      kChunk1 + R"(data: {"error":{"message":"boom","type":"server_error"}})"
                "\n\n",
      9);
  CHECK(s.stream_error() == "server_error");
}

TEST_CASE("usage: bodies of every API") {
  struct Case {
    UsageFormat f;
    std::string body;
    std::int64_t prompt, completion, cached, creation, total;
  };
  const std::vector<Case> cases{
      {UsageFormat::openai_body,
       R"({"id":"x","choices":[{"message":{"content":"usage"}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":2}}})",
       10, 5, 2, 0, 15},
      {UsageFormat::openai_body,
       R"({"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}})", 8, 0, 0, 0, 8},
      {UsageFormat::responses_body,
       R"({"id":"resp_1","output":[],"usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":3},"output_tokens":4,"total_tokens":13}})",
       9, 4, 3, 0, 13},
      {UsageFormat::anthropic_body,
       R"({"id":"msg_1","content":[],"usage":{"input_tokens":20,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"output_tokens":6}})",
       20, 6, 7, 5, 38},
  };
  for (const auto& c : cases) {
    UsageScanner s(c.f, true);
    CHECK(run(s, c.body, 3) == c.body);  // bodies are never altered
    REQUIRE(s.usage().seen);
    CHECK(s.usage().prompt_tokens == c.prompt);
    CHECK(s.usage().completion_tokens == c.completion);
    CHECK(s.usage().cached_tokens == c.cached);
    CHECK(s.usage().cache_creation_tokens == c.creation);
    CHECK(s.usage().total_tokens == c.total);
  }
}

TEST_CASE("usage: Anthropic stream, message_start plus the cumulative message_delta, not added twice") {
  const std::string stream =
      "event: message_start\ndata: "
      "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,"
      "\"cache_read_input_tokens\":10,\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}\n\n"
      "event: content_block_delta\ndata: "
      "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"usage\"}}\n\n"
      "event: message_delta\ndata: "
      "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{"
      "\"output_tokens\":15}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  for (std::size_t step : {std::size_t(1), std::size_t(64)}) {
    UsageScanner s(UsageFormat::anthropic_stream, true);  // drop is for OpenAI streams only
    CHECK(run(s, stream, step) == stream);
    CHECK(s.usage().prompt_tokens == 25);
    CHECK(s.usage().completion_tokens == 15);
    CHECK(s.usage().cached_tokens == 10);
    CHECK_FALSE(s.usage().cached_in_prompt);
    CHECK(s.stream_error().empty());
  }
  UsageScanner err(UsageFormat::anthropic_stream, false);
  run(err,
      "event: error\ndata: "
      "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
      4);
  CHECK(err.stream_error() == "overloaded_error");
}

TEST_CASE("usage: Responses stream, response.completed carries the usage; failures are errors") {
  const std::string stream =
      "event: response.created\ndata: "
      "{\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"usage\":null}}\n\n"
      "event: response.output_text.delta\ndata: "
      "{\"type\":\"response.output_text.delta\",\"delta\":\"usage\"}\n\n"
      "event: response.completed\ndata: "
      "{\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{"
      "\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,\"total_"
      "tokens\":13}}}\n\n";
  UsageScanner s(UsageFormat::responses_stream, false);
  CHECK(run(s, stream, 7) == stream);
  CHECK(s.usage().prompt_tokens == 11);
  CHECK(s.usage().total_tokens == 13);
  UsageScanner failed(UsageFormat::responses_stream, false);
  run(failed, "event: response.failed\ndata: {\"response\":{\"error\":{\"code\":\"server_error\"}}}\n\n",
      100);
  CHECK(failed.stream_error() == "server_error");
}

TEST_CASE("usage: formats by path, cost from prices (unknown price -> no cost)") {
  CHECK(core::usage_format("/v1/chat/completions", true) == UsageFormat::openai_stream);
  CHECK(core::usage_format("/v1/embeddings", false) == UsageFormat::openai_body);
  CHECK(core::usage_format("/v1/responses", true) == UsageFormat::responses_stream);
  CHECK(core::usage_format("/v1/messages", false) == UsageFormat::anthropic_body);
  CHECK(core::usage_format("/v1/messages/count_tokens", false) == UsageFormat::none);

  Usage u;
  u.seen = true;
  u.prompt_tokens = 1000;
  u.cached_tokens = 400;
  u.completion_tokens = 100;
  const core::Pricing p{2.5, 10.0, 1.25};
  CHECK(*core::cost_usd(u, p) == Approx((600 * 2.5 + 400 * 1.25 + 100 * 10.0) / 1e6));
  CHECK(*core::cost_usd(u, {2.5, 10.0, std::nullopt}) == Approx((1000 * 2.5 + 100 * 10.0) / 1e6));
  CHECK_FALSE(core::cost_usd(u, {2.5, std::nullopt, std::nullopt}));
  u.cached_in_prompt = false;  // Anthropic: input_tokens excludes the cached part
  u.cache_creation_tokens = 50;
  CHECK(*core::cost_usd(u, p) == Approx((1000 * 2.5 + 400 * 1.25 + 50 * 2.5 + 100 * 10.0) / 1e6));
  Usage none;
  CHECK_FALSE(core::cost_usd(none, p));
}

TEST_CASE("usage: the request is made to ask for usage, in place, never with a duplicate key") {
  struct Case {
    std::string body, expected;
    bool asked;
  };
  const std::vector<Case> cases{
      {R"({"model":"m","stream":true})",
       R"({"stream_options":{"include_usage":true},"model":"up","stream":true})", false},
      {R"({"model":"m","stream":true,"stream_options":{}})",
       R"({"model":"up","stream":true,"stream_options":{"include_usage":true}})", false},
      {R"({"model":"m","stream":true,"stream_options":{"x":1}})",
       R"({"model":"up","stream":true,"stream_options":{"include_usage":true,"x":1}})", false},
      {R"({"model":"m","stream":true,"stream_options":{"include_usage":false}})",
       R"({"model":"up","stream":true,"stream_options":{"include_usage":true}})", false},
      {R"({"model":"m","stream":true,"stream_options":null})",
       R"({"model":"up","stream":true,"stream_options":{"include_usage":true}})", false},
      {R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})",
       R"({"model":"up","stream":true,"stream_options":{"include_usage":true}})", true},
      {R"({"stream":true})", R"({"model":"up","stream_options":{"include_usage":true},"stream":true})",
       false},
  };
  for (const auto& c : cases) {
    auto info = core::inspect_inference_body(c.body);
    REQUIRE(info);
    bool asked = true;
    const auto splice = core::ensure_stream_usage(c.body, asked);
    CHECK(asked == c.asked);
    const std::string out = core::rewrite_model(c.body, *info, "up", splice ? &*splice : nullptr);
    CHECK(out == c.expected);
    CHECK(core::inspect_inference_body(out));
  }
}

namespace {

// A random usage-like JSON value: the keys the APIs use (some written with escapes), others,
// duplicates, and values of every type, nested up to `depth`.
std::string random_usage_value(std::mt19937& rng, int depth) {
  static const std::vector<std::string> keys = {"prompt_tokens",
                                                "input_tokens",
                                                "completion_tokens",
                                                "output_tokens",
                                                "total_tokens",
                                                "cache_read_input_tokens",
                                                "cache_creation_input_tokens",
                                                "prompt_tokens_details",
                                                "input_tokens_details",
                                                "cached_tokens",
                                                "prompt\\u005ftokens",
                                                "cached\\u005Ftokens",
                                                "other",
                                                "a_key_longer_than_thirty_two_bytes_in_all"};
  static const std::vector<std::string> scalars = {"0",
                                                   "7",
                                                   "-3",
                                                   "2.5",
                                                   "1e3",
                                                   "1e300",
                                                   "-1e300",
                                                   "18446744073709551615",
                                                   "9223372036854775807",
                                                   "\"12\"",
                                                   "null",
                                                   "true",
                                                   "false",
                                                   "[]",
                                                   "[1,{\"cached_tokens\":9}]"};
  if (depth == 0 || rng() % 3 == 0) return scalars[rng() % scalars.size()];
  std::string o = "{";
  const int members = static_cast<int>(rng() % 6);
  for (int m = 0; m < members; ++m) {
    if (m) o += rng() % 2 ? "," : " , ";
    o += "\"" + keys[rng() % keys.size()] + "\":" + random_usage_value(rng, depth - 1);
  }
  return o + "}";
}

}  // namespace

TEST_CASE("usage object: the one-pass reader sees what the parsed DOM sees") {
  // Bodies are read by a SAX pass, stream events through a DOM: both must count alike, duplicates
  // (the last wins), nesting (only depth 1 and the details objects count) and odd values included.
  std::mt19937 rng(20261125);
  int objects = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = "{";
    const int members = static_cast<int>(rng() % 8);
    for (int m = 0; m < members; ++m) {
      if (m) text += ",";
      text += "\"" + std::string(rng() % 4 ? "prompt_tokens_details" : "total_tokens") + "\":";
      text += random_usage_value(rng, 3);
    }
    text += "}";
    // Half the rounds use a random top-level object instead; a few are cut short (not JSON).
    if (round % 2) text = random_usage_value(rng, 4);
    if (round % 17 == 0 && !text.empty()) text.resize(rng() % text.size());
    INFO(text);
    for (bool anthropic : {false, true}) {
      const auto fast = core::read_usage_object(text, anthropic);
      const auto dom = core::detail::read_usage_object_dom(text, anthropic);
      REQUIRE(fast.has_value() == dom.has_value());
      if (!fast) continue;
      ++objects;
      CHECK(fast->prompt_tokens == dom->prompt_tokens);
      CHECK(fast->completion_tokens == dom->completion_tokens);
      CHECK(fast->cached_tokens == dom->cached_tokens);
      CHECK(fast->cache_creation_tokens == dom->cache_creation_tokens);
      CHECK(fast->total_tokens == dom->total_tokens);
      CHECK(fast->cached_in_prompt == dom->cached_in_prompt);
    }
  }
  CHECK(objects > 10000);
}

TEST_CASE("usage object: fields by name, duplicates, details and numbers out of range") {
  const auto u = core::read_usage_object(
      R"({"prompt_tokens":5,"prompt_tokens":12,"completion_tokens":3.9,"prompt_tokens_details":{"cached_tokens":4},)"
      R"("other":{"prompt_tokens":99},"total_tokens":"x"})",
      false);
  REQUIRE(u);
  CHECK(u->prompt_tokens == 12);  // the last duplicate
  CHECK(u->completion_tokens == 3);
  CHECK(u->cached_tokens == 4);
  CHECK(u->total_tokens == 0);  // present but not a number
  // Out of range: saturated, and so is the total (no overflow).
  const auto big = core::read_usage_object(
      R"({"input_tokens":1e300,"output_tokens":9223372036854775807,"cache_creation_input_tokens":-1e300})",
      true);
  REQUIRE(big);
  CHECK(big->prompt_tokens == std::numeric_limits<std::int64_t>::max());
  CHECK(big->cache_creation_tokens == std::numeric_limits<std::int64_t>::min());
  CHECK(big->total_tokens == -1);  // max + max saturates at max, and max + min is -1

  CHECK_FALSE(core::read_usage_object(R"({"prompt_tokens":1)", false));
  CHECK_FALSE(core::read_usage_object(R"([1])", false));
  CHECK_FALSE(core::read_usage_object(R"({"prompt_tokens":1} x)", false));
}
