#include "core/header_policy.hpp"
#include "core/relay_plan.hpp"

#include <catch2/catch.hpp>

#include <array>

using namespace core::http1;

namespace {
ResponseHead parse(const std::string& raw) {
  ResponseHead h;
  REQUIRE(parse_response_head(raw, "POST", {}, h) == HeadError::none);
  return h;
}
}  // namespace

TEST_CASE("relay plan: framing towards the client") {
  static std::string raw_len = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Type: application/json\r\n\r\n";
  static std::string raw_chunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  static std::string raw_close = "HTTP/1.1 200 OK\r\n\r\n";
  static std::string raw_204 = "HTTP/1.1 204 No Content\r\n\r\n";
  const auto len = parse(raw_len), chunk = parse(raw_chunk), close = parse(raw_close), no = parse(raw_204);

  auto p = plan_relay(len, {});
  CHECK(p.framing == Framing::length);
  CHECK(p.content_length == 7);
  CHECK(p.keep_alive);
  p = plan_relay(len, {.body_may_change = true});
  CHECK(p.framing == Framing::chunked);
  p = plan_relay(chunk, {});
  CHECK(p.framing == Framing::chunked);
  p = plan_relay(close, {});
  CHECK(p.framing == Framing::chunked);  // a close-delimited upstream body still ends cleanly for us
  CHECK(p.keep_alive);
  p = plan_relay(chunk, {.version_minor = 0});
  CHECK(p.framing == Framing::until_close);
  CHECK_FALSE(p.keep_alive);
  p = plan_relay(len, {.keep_alive = false});
  CHECK_FALSE(p.keep_alive);
  p = plan_relay(no, {});
  CHECK(p.framing == Framing::none);
  CHECK_FALSE(p.length_header);
}

TEST_CASE("relay plan: the rendered head keeps the numeric status and reason, filters fields") {
  static std::string raw =
      "HTTP/1.1 529 Overloaded\r\nContent-Type: application/json\r\nSet-Cookie: a=b\r\nRetry-After: 3\r\n"
      "Content-Length: 2\r\nConnection: keep-alive\r\n\r\n";
  const auto up = parse(raw);
  const std::array<Field, 1> extra{Field{"X-Request-Id", "abc"}};
  std::string out;
  render_relay_head(up, plan_relay(up, {}), 1, &core::forward_to_client, extra, out);
  CHECK(out ==
        "HTTP/1.1 529 Overloaded\r\nContent-Type: application/json\r\nRetry-After: 3\r\nX-Request-Id: abc\r\n"
        "Content-Length: 2\r\n\r\n");

  out.clear();
  render_relay_head(up, plan_relay(up, {.version_minor = 0, .keep_alive = false}), 0, &core::forward_to_client, {},
                    out);
  CHECK(out ==
        "HTTP/1.0 529 Overloaded\r\nContent-Type: application/json\r\nRetry-After: 3\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n");

  static std::string empty_reason = "HTTP/1.1 520 \r\nContent-Length: 0\r\n\r\n";
  const auto e = parse(empty_reason);
  out.clear();
  render_relay_head(e, plan_relay(e, {}), 1, &core::forward_to_client, {}, out);
  CHECK(out == "HTTP/1.1 520 \r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("relay plan: forwarded lines go out as received, adjacent ones as one stretch") {
  // Runs of forwarded lines are copied from the received head: the same bytes a field-by-field
  // rebuild gives, except that a line keeps the provider's own whitespace around its value.
  static std::string raw =
      "HTTP/1.1 200 OK\r\ncontent-type:application/json\r\nx-ratelimit-limit-requests: 100 \r\n"
      "x-ratelimit-remaining-requests:\t99\r\ndate: Tue\r\nopenai-version: 2020-10-01\r\nserver: x\r\n"
      "x-ratelimit-reset-tokens: 6ms\r\nContent-Length: 2\r\n\r\n";
  const auto up = parse(raw);
  std::string out;
  render_relay_head(up, plan_relay(up, {}), 1, &core::forward_to_client, {}, out);
  CHECK(
      out ==
      "HTTP/1.1 200 OK\r\ncontent-type:application/json\r\nx-ratelimit-limit-requests: 100 \r\n"
      "x-ratelimit-remaining-requests:\t99\r\nopenai-version: 2020-10-01\r\nx-ratelimit-reset-tokens: 6ms\r\n"
      "Content-Length: 2\r\n\r\n");

  // Fields not parsed from a head (no line) are written field by field, in order with the rest.
  ResponseHead built = up;
  built.fields.insert(built.fields.begin() + 2, Field{"Retry-After", "1"});
  out.clear();
  render_relay_head(built, plan_relay(built, {}), 1, &core::forward_to_client, {}, out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\ncontent-type:application/json\r\nx-ratelimit-limit-requests: 100 \r\n"
        "Retry-After: 1\r\nx-ratelimit-remaining-requests:\t99\r\nopenai-version: 2020-10-01\r\n"
        "x-ratelimit-reset-tokens: 6ms\r\nContent-Length: 2\r\n\r\n");
}
