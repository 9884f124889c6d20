#include "core/bounded_cache.hpp"

#include <catch2/catch.hpp>

using Cache = core::BoundedCache<int>;
using namespace std::chrono_literals;

TEST_CASE("bounded cache: hits, expiry, LRU eviction at the bound") {
  Cache c(3, 10s);
  const auto t0 = Cache::Clock::time_point{} + 1h;
  c.put("a", 1, t0);
  c.put("b", 2, t0);
  c.put("c", 3, t0);
  REQUIRE(c.find("a", t0) != nullptr);  // a becomes most recent; b is now the oldest
  c.put("d", 4, t0);
  CHECK(c.size() == 3);
  CHECK(c.find("b", t0) == nullptr);
  CHECK(*c.find("a", t0) == 1);
  CHECK(*c.find("d", t0) == 4);

  CHECK(c.find("a", t0 + 11s) == nullptr);  // expired: gone, and removed
  CHECK(c.size() == 2);
  c.put("c", 30, t0 + 11s);  // the expired tail is dropped on put
  CHECK(c.size() == 1);
  CHECK(*c.find("c", t0 + 11s) == 30);
}

TEST_CASE("bounded cache: a flood of distinct keys never exceeds the bound") {
  Cache c(100, 10s);
  for (int i = 0; i < 100000; ++i) c.put("k" + std::to_string(i), i);
  CHECK(c.size() == 100);
  CHECK(c.find("k99999") != nullptr);
  CHECK(c.find("k0") == nullptr);
  c.erase("k99999");
  CHECK(c.find("k99999") == nullptr);
  c.clear();
  CHECK(c.size() == 0);
}
