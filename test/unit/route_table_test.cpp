#include "core/route_table.hpp"

#include <catch2/catch.hpp>

namespace {
core::RouteTable<int> table() {
  core::RouteTable<int> t;
  t.add("GET", "/health/live", 1);
  t.add("GET", "/admin/providers", 2);
  t.add("POST", "/admin/providers", 3);
  t.add("GET", "/admin/providers/{id}", 4);
  t.add("PUT", "/admin/providers/{id}", 5);
  t.add("DELETE", "/admin/providers/{id}", 6);
  t.add("POST", "/admin/keys/{id}/rotate", 7);
  t.add("GET", "/v1/models/{model*}", 8);
  return t;
}
using O = core::RouteTable<int>::Outcome;
}  // namespace

TEST_CASE("routes: exact match and captures") {
  auto t = table();
  auto m = t.match("GET", "/health/live");
  REQUIRE(m.outcome == O::found);
  CHECK(*m.handler == 1);
  m = t.match("PUT", "/admin/providers/abc");
  REQUIRE(m.outcome == O::found);
  CHECK(*m.handler == 5);
  CHECK(m.params.get("id") == "abc");
  m = t.match("POST", "/admin/keys/k1/rotate");
  REQUIRE(m.outcome == O::found);
  CHECK(m.params.get("id") == "k1");
}

TEST_CASE("routes: unknown path is 404") {
  auto t = table();
  CHECK(t.match("POST", "/nope").outcome == O::not_found);
  CHECK(t.match("GET", "/health/live/").outcome == O::not_found);
  CHECK(t.match("GET", "/health").outcome == O::not_found);
  CHECK(t.match("GET", "/admin/providers/a/b").outcome == O::not_found);
  CHECK(t.match("GET", "").outcome == O::not_found);
}

TEST_CASE("routes: known path with wrong method is 405 with Allow") {
  auto t = table();
  auto m = t.match("DELETE", "/health/live");
  CHECK(m.outcome == O::method_not_allowed);
  CHECK(m.allow == "GET");
  m = t.match("PATCH", "/admin/providers/x");
  CHECK(m.outcome == O::method_not_allowed);
  CHECK(m.allow == "GET, PUT, DELETE");
}

TEST_CASE("routes: HEAD falls back to GET") {
  auto t = table();
  auto m = t.match("HEAD", "/health/live");
  REQUIRE(m.outcome == O::found);
  CHECK(*m.handler == 1);
}

TEST_CASE("routes: rest capture keeps slashes and percent-decodes") {
  auto t = table();
  auto m = t.match("GET", "/v1/models/openai/gpt-4o");
  REQUIRE(m.outcome == O::found);
  CHECK(m.params.get("model") == "openai/gpt-4o");
  m = t.match("GET", "/v1/models/a%2Fb%20c");
  REQUIRE(m.outcome == O::found);
  CHECK(m.params.get("model") == "a/b c");
  CHECK(t.match("GET", "/v1/models/").outcome == O::not_found);
  CHECK(t.match("GET", "/v1/models/%zz").outcome == O::not_found);
}
