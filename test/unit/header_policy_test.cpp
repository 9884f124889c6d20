#include "core/header_policy.hpp"
#include "core/ascii.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>

TEST_CASE("headers: client -> upstream never carries credentials or hop-by-hop headers") {
  for (auto n : {"Authorization", "Cookie", "Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Upgrade",
                 "Proxy-Authorization", "Host", "Content-Length", "X-Stainless-Lang", "X-Request-Id"})
    CHECK_FALSE(core::forward_to_upstream(n));
  for (auto n : {"OpenAI-Organization", "openai-beta", "OpenAI-Project", "anthropic-beta"})
    CHECK(core::forward_to_upstream(n));
}

TEST_CASE("headers: upstream -> client keeps content type, rate limits and retry hints only") {
  for (auto n : {"Content-Type", "openai-processing-ms", "x-ratelimit-remaining-requests", "Retry-After",
                 "anthropic-ratelimit-requests-remaining", "request-id"})
    CHECK(core::forward_to_client(n));
  for (auto n :
       {"Connection", "Transfer-Encoding", "Set-Cookie", "Content-Length", "Server", "x-request-id", "", "c",
        "openai-model", "retry", "x-ratelimit", "anthropic-ratelimit", "Date", "ANTHROPIC-version"})
    CHECK_FALSE(core::forward_to_client(n));
  for (auto n : {"CONTENT-TYPE", "OpenAI-Version", "openai-organization", "Retry-After-Ms", "Request-Id",
                 "X-RateLimit-Limit-Tokens", "Anthropic-RateLimit-Tokens-Reset"})
    CHECK(core::forward_to_client(n));
}

TEST_CASE("ascii: iequals folds exactly the letters, 8 bytes at a time or one by one") {
  // Against a byte-by-byte reference over every byte value: '@' and '[' border the capitals,
  // 0xC1 and 0xDA have a capital's low 7 bits, and none of them may fold.
  const auto reference = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (core::ascii_lower(a[i]) != core::ascii_lower(b[i])) return false;
    return true;
  };
  std::mt19937 rng(3);
  const std::string near = "@AZ[`az{\xc1\xda\xe1\xfa-0";
  for (int round = 0; round < 200000; ++round) {
    std::string a(rng() % 20, '\0');
    for (char& c : a) c = rng() % 2 ? near[rng() % near.size()] : static_cast<char>(rng() % 256);
    std::string b = a;
    for (char& c : b) {  // change case, or the byte, at some positions
      const unsigned r = rng() % 8;
      if (r == 0) c = static_cast<char>(c ^ 0x20);
      if (r == 1) c = near[rng() % near.size()];
    }
    INFO(round);
    REQUIRE(core::iequals(a, b) == reference(a, b));
  }
  for (int c = 0; c < 256; ++c) {  // each byte in each lane, against its own fold
    for (int lane = 0; lane < 8; ++lane) {
      std::string x(8, 'q'), y(8, 'q');
      x[lane] = static_cast<char>(c);
      y[lane] = core::ascii_lower(static_cast<char>(c));
      CHECK(core::iequals(x, y));
      y[lane] = static_cast<char>(c ^ 0x20);
      CHECK(core::iequals(x, y) == reference(x, y));
    }
  }
}
