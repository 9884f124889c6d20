#include "core/route_table.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

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

TEST_CASE("routes: the literal-prefix shortcut decides as segment-by-segment matching does") {
  // Reference: the matcher without the shortcut (segments compared one by one).
  const auto reference = [](const core::detail::Pattern& p, std::string_view path) {
    if (path.empty() || path.front() != '/') return false;
    std::size_t pos = 1;
    for (const auto& seg : p.segments) {
      if (pos > path.size()) return false;
      const bool capture = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
      if (capture && seg[seg.size() - 2] == '*') return pos < path.size();
      auto next = path.find('/', pos);
      if (next == std::string_view::npos) next = path.size();
      const std::string_view part = path.substr(pos, next - pos);
      if (capture ? part.empty() : part != seg) return false;
      pos = next + 1;
    }
    return pos == path.size() + 1;
  };
  const std::vector<std::string> patterns = {"/health",
                                             "/health/live",
                                             "/admin/keys/{id}",
                                             "/admin/keys/{id}/rotate",
                                             "/v1/models/{model*}",
                                             "/v1/chat/completions",
                                             "/a//b",
                                             "/{x}/y"};
  const std::vector<std::string> parts = {"health", "live", "admin",  "keys", "k1",
                                          "rotate", "v1",   "models", "chat", "completions",
                                          "",       "a",    "b",      "y",    "x"};
  std::mt19937 rng(5);
  for (const auto& text : patterns) {
    const auto p = core::detail::compile(text);
    std::vector<std::string> paths = {text, text + "/", "", "/", text.substr(0, text.size() - 1)};
    for (int i = 0; i < 3000; ++i) {
      std::string path;
      const int n = static_cast<int>(rng() % 5);
      for (int k = 0; k < n; ++k) path += "/" + parts[rng() % parts.size()];
      paths.push_back(path);
    }
    for (const auto& path : paths) {
      core::PathParams params;
      INFO(text << " vs " << path);
      CHECK(core::detail::match(p, path, params) == reference(p, path));
    }
  }
}
