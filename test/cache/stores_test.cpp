// cache::Stores against a real redis-server: the rebuild's swap and the read repairs must never
// undo a change that reached Redis after the writer read PostgreSQL. Before generations, a rebuild
// that read its snapshot before a key was created (or revoked) swapped the old truth in, and the
// key was refused (or worked again) until the next rebuild: e2e_limits caught a new key answered
// 401 while another gateway of the test was warming the same Redis.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "cache/stores.hpp"
#include "test/cache/redis_fixture.hpp"

#include <string>
#include <utility>
#include <vector>

using namespace test_redis;

namespace {

core::KeyRecord record(std::string id) {
  core::KeyRecord r;
  r.id = std::move(id);
  r.name = "k";
  return r;
}

core::ModelRoutes model(std::string name) {
  core::ModelRoutes m;
  m.model_id = "id-" + name;
  m.model_name = std::move(name);
  return m;
}

using Keys = std::vector<std::pair<std::string, core::KeyRecord>>;

// Built here, not inside a co_await expression (GCC 12: no braced temporaries there).
Keys keys_of(std::vector<std::string> hashes) {
  Keys out;
  for (auto& h : hashes) out.emplace_back(h, record("id-" + h));
  return out;
}

}  // namespace

TEST_CASE("stores: a key written after the rebuild read its generation survives the rebuild's swap") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    CO_REQUIRE(co_await f.client->wait_connected(2s));
    cache::Stores stores(f.client, "t:");
    Keys first = keys_of({"old"});
    auto g0 = co_await stores.keys_generation();
    REQUIRE(g0);
    auto swapped = co_await stores.replace_keys(std::move(first), *g0);
    REQUIRE(swapped);
    CHECK(*swapped);

    // The rebuild reads the generation, then PostgreSQL (a snapshot without "new")...
    auto g1 = co_await stores.keys_generation();
    REQUIRE(g1);
    CHECK(*g1 != *g0);  // the swap itself raised it
    Keys snapshot = keys_of({"old"});
    // ...meanwhile an admin creates "new" and revokes "old" on another replica...
    const core::KeyRecord created = record("id-new");
    CO_REQUIRE(co_await stores.put_key("new", created));
    CO_REQUIRE(co_await stores.remove_key("old"));
    // ...and the rebuild's swap must refuse, leaving the changes in place.
    auto late = co_await stores.replace_keys(std::move(snapshot), *g1);
    REQUIRE(late);
    CHECK_FALSE(*late);
    auto now_new = co_await stores.key_lookup("new");
    auto now_old = co_await stores.key_lookup("old");
    REQUIRE((now_new && now_old));
    CHECK(now_new->record.has_value());
    CHECK_FALSE(now_old->record.has_value());  // revoked stays revoked
    // No temp hash is left behind.
    auto left = co_await cmd(*f.client, "KEYS", "t:key_records:tmp:*");
    REQUIRE(left);
    CHECK(left->elements.empty());

    // A retry that reads the generation again swaps its (newer) snapshot in.
    auto g2 = co_await stores.keys_generation();
    REQUIRE(g2);
    Keys fresh = keys_of({"new"});
    auto retried = co_await stores.replace_keys(std::move(fresh), *g2);
    REQUIRE(retried);
    CHECK(*retried);
    // An empty snapshot empties the hash.
    auto g3 = co_await stores.keys_generation();
    REQUIRE(g3);
    Keys none;
    auto emptied = co_await stores.replace_keys(std::move(none), *g3);
    REQUIRE(emptied);
    CHECK(*emptied);
    auto gone = co_await stores.key_lookup("new");
    REQUIRE(gone);
    CHECK_FALSE(gone->record.has_value());
  };
  f.run(body);
}

TEST_CASE("stores: a read repair is dropped when the key changed after the lookup") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    CO_REQUIRE(co_await f.client->wait_connected(2s));
    cache::Stores stores(f.client, "t:");
    // A lookup misses (Redis cold or lacking it); PostgreSQL says the key is active...
    auto miss = co_await stores.key_lookup("k1");
    REQUIRE(miss);
    CHECK_FALSE(miss->record.has_value());
    // ...but before the repair lands, the key is revoked on another replica.
    CO_REQUIRE(co_await stores.remove_key("k1"));
    const core::KeyRecord stale = record("id-k1");
    auto repaired = co_await stores.put_key_if("k1", stale, miss->generation);
    REQUIRE(repaired);
    CHECK_FALSE(*repaired);
    auto after = co_await stores.key_lookup("k1");
    REQUIRE(after);
    CHECK_FALSE(after->record.has_value());  // not resurrected
    // With nothing in between, the repair is written (and does not raise the generation).
    auto miss2 = co_await stores.key_lookup("k2");
    REQUIRE(miss2);
    const core::KeyRecord active = record("id-k2");
    auto ok = co_await stores.put_key_if("k2", active, miss2->generation);
    REQUIRE(ok);
    CHECK(*ok);
    auto hit = co_await stores.key_lookup("k2");
    REQUIRE(hit);
    CHECK(hit->record.has_value());
    CHECK(hit->generation == miss2->generation);
  };
  f.run(body);
}

TEST_CASE("stores: routes swap and repair under the same rule") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    CO_REQUIRE(co_await f.client->wait_connected(2s));
    cache::Stores stores(f.client, "t:");
    auto g0 = co_await stores.routes_generation();
    REQUIRE(g0);
    std::vector<core::ModelRoutes> a{model("a")};
    auto first = co_await stores.replace_routes(std::move(a), *g0);
    REQUIRE(first);
    CHECK(*first);
    // Two writers read the same generation; the second swap (an older snapshot) must refuse.
    auto g1 = co_await stores.routes_generation();
    REQUIRE(g1);
    std::vector<core::ModelRoutes> newer{model("a"), model("b")};
    std::vector<core::ModelRoutes> older{model("a")};
    auto won = co_await stores.replace_routes(std::move(newer), *g1);
    auto refused = co_await stores.replace_routes(std::move(older), *g1);
    REQUIRE((won && refused));
    CHECK(*won);
    CHECK_FALSE(*refused);
    auto b = co_await cmd(*f.client, "HEXISTS", "t:routes", "b");  // (these test routes do not decode)
    REQUIRE(b);
    CHECK(b->integer == 1);
    // A repair read before the swap is dropped.
    auto miss = co_await stores.route("c");
    REQUIRE(miss);
    CHECK_FALSE(miss->routes.has_value());
    auto g2 = co_await stores.routes_generation();
    REQUIRE(g2);
    std::vector<core::ModelRoutes> without_c{model("a"), model("b")};
    auto swapped = co_await stores.replace_routes(std::move(without_c), *g2);
    REQUIRE(swapped);
    const core::ModelRoutes c = model("c");
    auto repaired = co_await stores.put_route_if(c, miss->generation);
    REQUIRE(repaired);
    CHECK_FALSE(*repaired);
    auto c_there = co_await cmd(*f.client, "HEXISTS", "t:routes", "c");
    REQUIRE(c_there);
    CHECK(c_there->integer == 0);
  };
  f.run(body);
}
