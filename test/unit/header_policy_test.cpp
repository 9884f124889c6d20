#include "core/header_policy.hpp"

#include <catch2/catch.hpp>

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
