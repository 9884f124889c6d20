#include "core/upstream_target.hpp"

#include <catch2/catch.hpp>

TEST_CASE("upstream target: https default port and path") {
  auto t = core::parse_upstream_target("https://api.openai.com/v1");
  REQUIRE(t);
  CHECK(t->tls);
  CHECK(t->host == "api.openai.com");
  CHECK(t->port == "443");
  CHECK(t->host_header == "api.openai.com");
  CHECK(t->base_path == "/v1");
  CHECK(t->pool_key == "https://api.openai.com:443");
  CHECK(core::upstream_request_target(*t, "/chat/completions") == "/v1/chat/completions");
}

TEST_CASE("upstream target: http with explicit port, trailing slash") {
  auto t = core::parse_upstream_target("http://127.0.0.1:8081/api/v3/");
  REQUIRE(t);
  CHECK_FALSE(t->tls);
  CHECK(t->port == "8081");
  CHECK(t->host_header == "127.0.0.1:8081");
  CHECK(t->base_path == "/api/v3");
  CHECK_FALSE(core::parse_upstream_target("ftp://x/"));
}

TEST_CASE("upstream target: api-version is added to the query (Azure)") {
  auto t = core::parse_upstream_target("https://r.openai.azure.com/openai/deployments/gpt4o");
  REQUIRE(t);
  CHECK(core::upstream_request_target(*t, "/chat/completions", "2024-10-21") ==
        "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21");
  CHECK(core::upstream_request_target(*t, "/chat/completions?x=1", "2024-10-21") ==
        "/openai/deployments/gpt4o/chat/completions?x=1&api-version=2024-10-21");
  CHECK(core::upstream_request_target(*t, "/chat/completions") == "/openai/deployments/gpt4o/chat/completions");
}
