// Db pool, migrations and repositories against a real PostgreSQL (see main.cpp / temp_postgres).
#include <catch2/catch.hpp>

#include "storage/db.hpp"
#include "storage/key_repo.hpp"
#include "storage/migrations.hpp"
#include "storage/model_repo.hpp"
#include "storage/provider_repo.hpp"
#include "storage/route_repo.hpp"
#include "test_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using boost::asio::awaitable;
using core::errc;
using namespace std::chrono_literals;

storage::DbOptions options(std::string url = test::db_url()) {
  storage::DbOptions o;
  o.url = std::move(url);
  o.threads = 2;
  return o;
}

// A migrated, empty database for one test case.
std::unique_ptr<storage::Db> fresh_db(storage::DbOptions o = options()) {
  auto db = std::make_unique<storage::Db>(std::move(o));
  REQUIRE(db->migrate().has_value());
  pqxx::connection conn(test::db_url());
  pqxx::nontransaction tx(conn);
  tx.exec("TRUNCATE model_routes, models, providers, user_keys, key_budget_usage");
  return db;
}

bool is_rfc3339_utc_us(const std::string& s) {
  static const std::regex re(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)");
  return std::regex_match(s, re);
}

errc code_of(const core::Status& s) {
  return s ? errc::ok : s.error().code;
}

template <class T>
errc code_of(const core::Result<T>& r) {
  return r ? errc::ok : r.error().code;
}

// Never write co_await inside a Catch2 macro: GCC 12 mishandles the temporaries of its expression
// templates across the suspension (the assertion silently sees garbage). Await first, then check.
#define CHECK_CODE(expr, expected)             \
  do {                                         \
    const errc code_ = code_of(co_await expr); \
    CHECK(code_ == (expected));                \
  } while (false)
#define CHECK_OK(expr) CHECK_CODE(expr, errc::ok)
#define REQUIRE_OK(expr)                       \
  do {                                         \
    const errc code_ = code_of(co_await expr); \
    REQUIRE(code_ == errc::ok);                \
  } while (false)

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

using Clock = std::chrono::steady_clock;

// Polls `done` every 5 ms for up to `limit`; whether it came true. Pass a named predicate.
template <class Pred>
awaitable<bool> wait_until(Pred done, std::chrono::milliseconds limit = 5s) {
  const auto give_up = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > give_up) co_return false;
    co_await sleep_for(5ms);
  }
  co_return true;
}

std::chrono::milliseconds ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

long long count_rows(const std::string& sql) {
  pqxx::connection conn(test::db_url());
  pqxx::nontransaction tx(conn);
  return tx.exec1(sql)[0].as<long long>();
}

// Where a pool job can block until the test lets it go (a query the server never answers, without
// needing a server).
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Holds each of `n` pool jobs until all have arrived, so they provably run on n different pool
// threads (= connections). False if they did not all arrive within `limit`.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  bool arrive_and_wait(std::chrono::milliseconds limit = 3s) {
    std::unique_lock lock(mu_);
    ++arrived_;
    cv_.notify_all();
    return cv_.wait_for(lock, limit, [this] { return arrived_ >= n_; });
  }

 private:
  const int n_;
  int arrived_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

// A job that sits in a query the frozen server never answers, and says when it has started.
auto hanging_query(std::shared_ptr<std::atomic<bool>> started) {
  return [started = std::move(started)](pqxx::connection& c) -> core::Status {
    pqxx::nontransaction tx(c);
    *started = true;
    tx.exec("SELECT 1");
    return core::ok();
  };
}

void warm_up(storage::Db& db) {
  auto ping = [&]() -> awaitable<void> { REQUIRE_OK(db.ping()); };
  test::run_async(ping);
}

constexpr const char* kMissingId = "00000000-0000-4000-8000-000000000000";

core::NewProvider new_provider(std::string name, std::string key = "ENC") {
  core::NewProvider p;
  p.name = std::move(name);
  p.kind = "openai";
  p.base_url = "https://api.example.com/v1";
  p.api_key_enc = key;
  p.api_key_preview = key.empty() ? "" : "sk-p...wxyz";
  return p;
}

core::NewModel new_model(std::string name, std::string provider_id,
                         std::optional<std::string> upstream = std::nullopt) {
  core::NewModel m;
  m.name = std::move(name);
  m.provider_id = std::move(provider_id);
  m.provider_model_name = std::move(upstream);
  return m;
}

}  // namespace

TEST_CASE("migrate applies every embedded migration exactly once, also when raced", "[migrate]") {
  const auto migrations = storage::detail::embedded_migrations();
  REQUIRE(!migrations.empty());
  CHECK(migrations.front().version == 1);
  CHECK(migrations.front().name == "init");

  test::postgres().create_database("llmgw_race");
  const std::string url = test::postgres().url("llmgw_race");

  constexpr int kRacers = 4;
  std::latch go(kRacers);
  std::atomic<int> succeeded{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < kRacers; ++i) {
    racers.emplace_back([&] {
      storage::Db db(options(url));
      go.arrive_and_wait();
      if (db.migrate()) ++succeeded;
    });
  }
  for (auto& t : racers) t.join();
  CHECK(succeeded == kRacers);

  storage::Db db(options(url));
  CHECK(db.migrate().has_value());  // idempotent
  CHECK(db.migrate().has_value());

  pqxx::connection conn(url);
  pqxx::nontransaction tx(conn);
  const auto row = tx.exec1("SELECT count(*), max(version) FROM schema_migrations");
  CHECK(row[0].as<std::size_t>() == migrations.size());
  CHECK(row[1].as<int>() == migrations.back().version);
  for (const char* table : {"providers", "models", "user_keys"}) {
    CHECK_FALSE(tx.exec1(std::string("SELECT to_regclass('") + table + "')")[0].is_null());
  }
}

TEST_CASE("Db::run resumes on the caller's executor and maps failures", "[db]") {
  auto db = fresh_db();
  auto body = [&]() -> awaitable<void> {
    const auto io_thread = std::this_thread::get_id();

    const auto ping = co_await db->ping();
    CHECK(ping.has_value());
    CHECK(std::this_thread::get_id() == io_thread);

    std::thread::id ran_on;
    auto where = [&ran_on](pqxx::connection&) -> core::Result<int> {
      ran_on = std::this_thread::get_id();
      return 42;
    };
    const auto answer = co_await db->run<int>(where);
    REQUIRE(answer.has_value());
    CHECK(*answer == 42);
    CHECK(ran_on != io_thread);
    CHECK(std::this_thread::get_id() == io_thread);

    auto bad_sql = [](pqxx::connection& c) -> core::Result<int> {
      pqxx::nontransaction tx(c);
      tx.exec("SELEC 1");
      return 0;
    };
    CHECK_CODE(db->run<int>(bad_sql), errc::internal);
    CHECK(std::this_thread::get_id() == io_thread);

    auto duplicate = [](pqxx::connection& c) -> core::Result<int> {
      pqxx::work tx(c);
      tx.exec("INSERT INTO user_keys (name, key_hash, key_prefix) VALUES ('a', repeat('d', 64), 'p')");
      tx.exec("INSERT INTO user_keys (name, key_hash, key_prefix) VALUES ('b', repeat('d', 64), 'p')");
      tx.commit();
      return 0;
    };
    CHECK_CODE(db->run<int>(duplicate), errc::conflict);

    auto dangling = [](pqxx::connection& c) -> core::Result<int> {
      pqxx::nontransaction tx(c);
      tx.exec("INSERT INTO models (name, provider_id) VALUES ('x', gen_random_uuid())");
      return 0;
    };
    CHECK_CODE(db->run<int>(dangling), errc::invalid_request);

    auto throws = [](pqxx::connection&) -> core::Result<int> { throw std::runtime_error("boom"); };
    CHECK_CODE(db->run<int>(throws), errc::internal);

    // The connections survived all of that.
    CHECK_CODE(db->ping(), errc::ok);
    CHECK_CODE(db->ping(), errc::ok);
  };
  test::run_async(body);
}

TEST_CASE("the pool's conninfo gets connect_timeout and TCP keepalives unless already set", "[db]") {
  using storage::detail::pool_conninfo;
  using storage::detail::with_default_params;
  const std::string uri_keepalives =
      "keepalives=1&keepalives_idle=10&keepalives_interval=5&keepalives_count=3";
  const std::string kv_keepalives =
      "keepalives=1 keepalives_idle=10 keepalives_interval=5 keepalives_count=3";

  CHECK(pool_conninfo("postgresql://u@h/db", 3) == "postgresql://u@h/db?connect_timeout=3&" + uri_keepalives);
  CHECK(pool_conninfo("postgres://h/db?sslmode=disable", 2) ==
        "postgres://h/db?sslmode=disable&connect_timeout=2&" + uri_keepalives);
  CHECK(pool_conninfo("host=h dbname=db", 3) == "host=h dbname=db connect_timeout=3 " + kv_keepalives);
  CHECK(pool_conninfo("", 3) == "connect_timeout=3 " + kv_keepalives);

  // What the operator set stays as it is, in either form ("keepalives_idle" is not "keepalives").
  CHECK(pool_conninfo("host=h connect_timeout=9 keepalives_idle=60", 3) ==
        "host=h connect_timeout=9 keepalives_idle=60 keepalives=1 keepalives_interval=5 keepalives_count=3");
  CHECK(pool_conninfo("postgresql://h/db?keepalives=0&connect_timeout=1", 3) ==
        "postgresql://h/db?keepalives=0&connect_timeout=1&keepalives_idle=10&keepalives_interval=5"
        "&keepalives_count=3");
  CHECK(with_default_params("host=h keepalives_count = 7", {{"keepalives_count", "3"}}) ==
        "host=h keepalives_count = 7");
  CHECK(with_default_params("postgresql://h/db?", {{"a", "1"}}) == "postgresql://h/db?a=1");
  CHECK(with_default_params("postgresql://h/db?a=1&", {{"b", "2"}}) == "postgresql://h/db?a=1&b=2");
  CHECK(with_default_params("host=h/keepalives dbname=keepalives", {{"keepalives", "1"}}) ==
        "host=h/keepalives dbname=keepalives keepalives=1");

  // libpq takes both forms, and the socket really has the keepalive settings.
  for (const auto& url : {test::db_url(), test::postgres().uri("llmgw")}) {
    pqxx::connection conn(pool_conninfo(url, 3));
    int on = 0, idle = 0, interval = 0, count = 0;
    socklen_t len = sizeof(int);
    REQUIRE(::getsockopt(conn.sock(), SOL_SOCKET, SO_KEEPALIVE, &on, &len) == 0);
    REQUIRE(::getsockopt(conn.sock(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) == 0);
    REQUIRE(::getsockopt(conn.sock(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, &len) == 0);
    REQUIRE(::getsockopt(conn.sock(), IPPROTO_TCP, TCP_KEEPCNT, &count, &len) == 0);
    CHECK(on == 1);
    CHECK(idle == 10);
    CHECK(interval == 5);
    CHECK(count == 3);
  }
}

TEST_CASE("repositories use named statements, prepared once per connection", "[db]") {
  auto o = options();
  o.threads = 1;
  auto db = fresh_db(o);
  storage::ProviderRepo providers(*db);
  auto body = [&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) CHECK_CODE(providers.get(kMissingId), errc::not_found);
    auto count = [](pqxx::connection& c) -> core::Result<int> {
      pqxx::nontransaction tx(c);
      return tx.exec1("SELECT count(*) FROM pg_prepared_statements WHERE name = 'provider_get'")[0].as<int>();
    };
    const auto prepared = co_await db->run<int>(count);
    REQUIRE(prepared.has_value());
    CHECK(*prepared == 1);
  };
  test::run_async(body);
}

TEST_CASE("statement_timeout is set on every pooled connection", "[db]") {
  auto o = options();
  o.threads = 1;
  o.statement_timeout = 200ms;
  auto db = fresh_db(o);
  auto body = [&]() -> awaitable<void> {
    auto slow = [](pqxx::connection& c) -> core::Status {
      pqxx::nontransaction tx(c);
      tx.exec("SELECT pg_sleep(2)");
      return core::ok();
    };
    const auto started = std::chrono::steady_clock::now();
    CHECK_CODE(db->run<core::Unit>(slow), errc::db_unavailable);
    CHECK(std::chrono::steady_clock::now() - started < 1500ms);
    CHECK_CODE(db->ping(), errc::ok);
  };
  test::run_async(body);
}

TEST_CASE("a full queue answers overloaded at once; a stopped Db answers shutting_down", "[db]") {
  auto o = options();
  o.threads = 1;
  o.max_queue = 1;
  auto db = fresh_db(o);
  auto body = [&]() -> awaitable<void> {
    auto executor = co_await boost::asio::this_coro::executor;
    std::atomic<int> started{0};
    auto sleepy = [&started](pqxx::connection& c) -> core::Status {
      ++started;
      pqxx::nontransaction tx(c);
      tx.exec("SELECT pg_sleep(0.4)");
      return core::ok();
    };
    std::vector<errc> codes;
    auto one = [&]() -> awaitable<void> {
      const auto status = co_await db->run<core::Unit>(sleepy);
      codes.push_back(code_of(status));
    };
    boost::asio::co_spawn(executor, one(), boost::asio::detached);  // runs
    while (started == 0) co_await sleep_for(10ms);                  // the only thread is now busy
    boost::asio::co_spawn(executor, one(), boost::asio::detached);  // waits in the queue
    boost::asio::co_spawn(executor, one(), boost::asio::detached);  // no room
    while (codes.size() < 3) co_await sleep_for(20ms);
    CHECK(codes == std::vector<errc>{errc::overloaded, errc::ok, errc::ok});
  };
  test::run_async(body);

  db->stop();
  db->stop();  // idempotent
  auto after_stop = [&]() -> awaitable<void> { CHECK_CODE(db->ping(), errc::shutting_down); };
  test::run_async(after_stop);
}

TEST_CASE("ProviderRepo: create, read, update, soft delete", "[providers]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  auto body = [&]() -> awaitable<void> {
    auto created = co_await providers.create(new_provider("openai"));
    REQUIRE(created.has_value());
    const core::Provider p = *created;
    CHECK(p.id.size() == 36);
    CHECK(p.name == "openai");
    CHECK(p.kind == "openai");
    CHECK(p.base_url == "https://api.example.com/v1");
    CHECK(p.api_key_enc == "ENC");
    CHECK(p.api_key_preview == "sk-p...wxyz");
    CHECK(p.is_active);
    CHECK(is_rfc3339_utc_us(p.created_at));
    CHECK(is_rfc3339_utc_us(p.updated_at));

    const auto dup = co_await providers.create(new_provider("openai"));
    REQUIRE_FALSE(dup.has_value());
    CHECK(dup.error().code == errc::conflict);
    CHECK(dup.error().message == "a provider named 'openai' already exists");
    CHECK(dup.error().param == "name");

    auto keyless = co_await providers.create(new_provider("router", ""));
    REQUIRE(keyless.has_value());
    CHECK(keyless->api_key_enc.empty());
    CHECK(keyless->api_key_preview.empty());

    auto all = co_await providers.list();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 2);
    CHECK((*all)[0].name == "openai");
    CHECK((*all)[1].name == "router");

    auto got = co_await providers.get(p.id);
    REQUIRE(got.has_value());
    CHECK(got->name == "openai");
    CHECK(got->created_at == p.created_at);
    CHECK_CODE(providers.get(kMissingId), errc::not_found);

    core::ProviderPatch rename;
    rename.name = "openai-eu";
    auto renamed = co_await providers.update(p.id, rename);
    REQUIRE(renamed.has_value());
    CHECK(renamed->name == "openai-eu");
    CHECK(renamed->kind == "openai");      // untouched
    CHECK(renamed->api_key_enc == "ENC");  // untouched
    CHECK(renamed->updated_at > p.updated_at);
    CHECK(renamed->created_at == p.created_at);

    core::ProviderPatch clash;
    clash.name = "router";
    const auto clashed = co_await providers.update(p.id, clash);
    REQUIRE_FALSE(clashed.has_value());
    CHECK(clashed.error().code == errc::conflict);
    CHECK(clashed.error().message == "a provider named 'router' already exists");

    core::ProviderPatch new_key;
    new_key.api_key_enc = "ENC2";
    new_key.api_key_preview = "sk-n...0000";
    new_key.base_url = "https://eu.example.com/v1";
    auto rekeyed = co_await providers.update(p.id, new_key);
    REQUIRE(rekeyed.has_value());
    CHECK(rekeyed->api_key_enc == "ENC2");
    CHECK(rekeyed->api_key_preview == "sk-n...0000");
    CHECK(rekeyed->base_url == "https://eu.example.com/v1");
    CHECK(rekeyed->name == "openai-eu");
    auto secret = co_await providers.secret(p.id);
    REQUIRE(secret.has_value());
    CHECK(secret->api_key_enc == "ENC2");
    CHECK(secret->extra_headers_enc.empty());
    auto no_secret = co_await providers.secret(keyless->id);
    REQUIRE(no_secret.has_value());
    CHECK(no_secret->api_key_enc.empty());

    core::ProviderPatch off;
    off.is_active = false;
    auto disabled = co_await providers.update(p.id, off);
    REQUIRE(disabled.has_value());
    CHECK_FALSE(disabled->is_active);
    CHECK_CODE(providers.secret(p.id), errc::not_found);

    core::ProviderPatch drop_key;
    drop_key.api_key_enc = "";
    drop_key.api_key_preview = "";
    drop_key.is_active = true;
    auto keyless_again = co_await providers.update(p.id, drop_key);
    REQUIRE(keyless_again.has_value());
    CHECK(keyless_again->is_active);
    CHECK(keyless_again->api_key_enc.empty());
    CHECK(keyless_again->api_key_preview.empty());

    CHECK_CODE(providers.update(kMissingId, off), errc::not_found);

    auto removed = co_await providers.remove(p.id, false);
    REQUIRE(removed.has_value());
    CHECK(removed->empty());
    // Deleted rows are invisible.
    CHECK_CODE(providers.get(p.id), errc::not_found);
    CHECK_CODE(providers.update(p.id, rename), errc::not_found);
    CHECK_CODE(providers.remove(p.id, true), errc::not_found);
    CHECK_CODE(providers.secret(p.id), errc::not_found);
    auto remaining = co_await providers.list();
    REQUIRE(remaining.has_value());
    REQUIRE(remaining->size() == 1);
    CHECK((*remaining)[0].name == "router");

    // The name is free again once its holder is deleted.
    auto reused = co_await providers.create(new_provider("openai-eu"));
    REQUIRE(reused.has_value());
    CHECK(reused->id != p.id);
  };
  test::run_async(body);
}

TEST_CASE("ModelRepo: create, read, update, soft delete", "[models]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  auto body = [&]() -> awaitable<void> {
    auto a = co_await providers.create(new_provider("a"));
    auto b = co_await providers.create(new_provider("b"));
    auto gone = co_await providers.create(new_provider("gone"));
    REQUIRE((a && b && gone));
    REQUIRE_OK(providers.remove(gone->id, false));
    const std::vector<std::string> bad_provider_ids{kMissingId, gone->id};

    auto created = co_await models.create(new_model("gpt-4o", a->id));
    REQUIRE(created.has_value());
    const core::Model m = *created;
    CHECK(m.name == "gpt-4o");
    CHECK(m.provider_id == a->id);
    CHECK_FALSE(m.provider_model_name.has_value());
    CHECK(m.is_active);
    CHECK(is_rfc3339_utc_us(m.created_at));

    for (const auto& provider_id : bad_provider_ids) {
      const auto bad = co_await models.create(new_model("other", provider_id));
      REQUIRE_FALSE(bad.has_value());
      CHECK(bad.error().code == errc::invalid_request);
      CHECK(bad.error().message == "provider_id does not exist");
      CHECK(bad.error().param == "provider_id");
    }

    const auto dup = co_await models.create(new_model("gpt-4o", b->id));
    REQUIRE_FALSE(dup.has_value());
    CHECK(dup.error().code == errc::conflict);
    CHECK(dup.error().message == "a model named 'gpt-4o' already exists");
    CHECK(dup.error().param == "name");

    auto other = co_await models.create(new_model("mini", b->id, "gpt-4o-mini-2024"));
    REQUIRE(other.has_value());
    CHECK(other->provider_model_name == std::optional<std::string>("gpt-4o-mini-2024"));

    auto all = co_await models.list();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 2);
    CHECK((*all)[0].name == "gpt-4o");
    CHECK((*all)[1].name == "mini");
    auto got = co_await models.get(m.id);
    REQUIRE(got.has_value());
    CHECK(got->name == "gpt-4o");
    CHECK_CODE(models.get(kMissingId), errc::not_found);

    core::ModelPatch rename;
    rename.name = "gpt-4o-eu";
    rename.provider_model_name = std::optional<std::string>("gpt-4o-2024-08-06");
    auto renamed = co_await models.update(m.id, rename);
    REQUIRE(renamed.has_value());
    CHECK(renamed->first.name == "gpt-4o-eu");
    CHECK(renamed->first.provider_model_name == std::optional<std::string>("gpt-4o-2024-08-06"));
    CHECK(renamed->first.provider_id == a->id);
    CHECK(renamed->first.updated_at > m.updated_at);
    CHECK(renamed->second == "gpt-4o");

    core::ModelPatch move;
    move.provider_id = b->id;
    move.provider_model_name = std::optional<std::string>();  // back to "same as name"
    move.is_active = false;
    auto moved = co_await models.update(m.id, move);
    REQUIRE(moved.has_value());
    CHECK(moved->first.provider_id == b->id);
    CHECK_FALSE(moved->first.provider_model_name.has_value());
    CHECK_FALSE(moved->first.is_active);
    CHECK(moved->first.name == "gpt-4o-eu");
    CHECK(moved->second == "gpt-4o-eu");

    for (const auto& provider_id : bad_provider_ids) {
      core::ModelPatch bad;
      bad.provider_id = provider_id;
      const auto rejected = co_await models.update(m.id, bad);
      REQUIRE_FALSE(rejected.has_value());
      CHECK(rejected.error().code == errc::invalid_request);
      CHECK(rejected.error().param == "provider_id");
    }

    core::ModelPatch clash;
    clash.name = "mini";
    const auto clashed = co_await models.update(m.id, clash);
    REQUIRE_FALSE(clashed.has_value());
    CHECK(clashed.error().code == errc::conflict);
    CHECK(clashed.error().message == "a model named 'mini' already exists");
    CHECK_CODE(models.update(kMissingId, clash), errc::not_found);

    auto removed = co_await models.remove(m.id);
    REQUIRE(removed.has_value());
    CHECK(*removed == "gpt-4o-eu");
    CHECK_CODE(models.get(m.id), errc::not_found);
    CHECK_CODE(models.update(m.id, rename), errc::not_found);
    CHECK_CODE(models.remove(m.id), errc::not_found);
    auto remaining = co_await models.list();
    REQUIRE(remaining.has_value());
    REQUIRE(remaining->size() == 1);
    CHECK((*remaining)[0].name == "mini");
    auto reused = co_await models.create(new_model("gpt-4o-eu", a->id));
    CHECK(reused.has_value());
  };
  test::run_async(body);
}

TEST_CASE("ProviderRepo::remove refuses while models use it, unless forced", "[providers]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    auto p = co_await providers.create(new_provider("p"));
    REQUIRE(p.has_value());
    auto one = co_await models.create(new_model("one", p->id));
    auto two = co_await models.create(new_model("two", p->id));
    auto dead = co_await models.create(new_model("dead", p->id));
    REQUIRE((one && two && dead));
    REQUIRE_OK(models.remove(dead->id));  // deleted models do not count

    const auto refused = co_await providers.remove(p->id, false);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::conflict);
    CHECK(refused.error().message == "provider is used by 2 model(s)");
    CHECK_OK(providers.get(p->id));
    auto still_routed = co_await routes.find("one");
    REQUIRE(still_routed.has_value());
    CHECK(still_routed->has_value());

    auto forced = co_await providers.remove(p->id, true);
    REQUIRE(forced.has_value());
    CHECK(*forced == std::vector<std::string>{"one", "two"});
    CHECK_CODE(providers.get(p->id), errc::not_found);
    for (const auto& id : {one->id, two->id}) {
      auto m = co_await models.get(id);
      REQUIRE(m.has_value());
      CHECK_FALSE(m->is_active);
    }
    auto unrouted = co_await routes.find("one");
    REQUIRE(unrouted.has_value());
    CHECK_FALSE(unrouted->has_value());

    // Models cannot be pointed at, or re-created on, the deleted provider.
    core::ModelPatch back;
    back.provider_id = p->id;
    CHECK_CODE(models.update(one->id, back), errc::invalid_request);
    CHECK_CODE(models.create(new_model("three", p->id)), errc::invalid_request);
  };
  test::run_async(body);
}

TEST_CASE("KeyRepo: create, lookup, update, rotate, revoke", "[keys]") {
  auto db = fresh_db();
  storage::KeyRepo keys(*db);
  const std::string hash1(64, 'a'), hash2(64, 'b'), hash3(64, 'c');
  auto body = [&]() -> awaitable<void> {
    const core::NewUserKey ci{"ci", {}, {}};
    auto created = co_await keys.create(ci, hash1, "sk-gw-aaaa");
    REQUIRE(created.has_value());
    const core::UserKey k = *created;
    CHECK(k.name == "ci");
    CHECK(k.key_prefix == "sk-gw-aaaa");
    CHECK(k.is_active);
    CHECK_FALSE(k.last_used_at.has_value());
    CHECK(is_rfc3339_utc_us(k.created_at));

    const core::NewUserKey again{"again", {}, {}}, other_key{"other", {}, {}};
    CHECK_CODE(keys.create(again, hash1, "sk-gw-aaaa"), errc::conflict);
    auto other = co_await keys.create(other_key, hash3, "sk-gw-cccc");
    REQUIRE(other.has_value());

    auto found = co_await keys.find_active(hash1);
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK((*found)->id == k.id);
    CHECK((*found)->name == "ci");
    auto unknown = co_await keys.find_active(hash2);
    REQUIRE(unknown.has_value());
    CHECK_FALSE(unknown->has_value());

    auto records = co_await keys.active_records();
    REQUIRE(records.has_value());
    std::vector<std::string> hashes;
    for (const auto& [h, record] : *records) hashes.push_back(h);
    std::sort(hashes.begin(), hashes.end());
    CHECK(hashes == std::vector<std::string>{hash1, hash3});

    auto all = co_await keys.list();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 2);
    CHECK((*all)[0].id == k.id);
    auto got = co_await keys.get(k.id);
    REQUIRE(got.has_value());
    CHECK(got->name == "ci");
    CHECK_CODE(keys.get(kMissingId), errc::not_found);

    core::UserKeyPatch off;
    off.name = "ci-paused";
    off.is_active = false;
    auto paused = co_await keys.update(k.id, off);
    REQUIRE(paused.has_value());
    CHECK(paused->first.name == "ci-paused");
    CHECK_FALSE(paused->first.is_active);
    CHECK(paused->second == hash1);
    auto not_active = co_await keys.find_active(hash1);
    REQUIRE(not_active.has_value());
    CHECK_FALSE(not_active->has_value());

    // Rotating keeps is_active as it is.
    auto rotated = co_await keys.rotate(k.id, hash2, "sk-gw-bbbb");
    REQUIRE(rotated.has_value());
    CHECK(rotated->second == hash1);
    CHECK(rotated->first.key_prefix == "sk-gw-bbbb");
    CHECK_FALSE(rotated->first.is_active);
    CHECK_CODE(keys.rotate(k.id, hash3, "sk-gw-cccc"), errc::conflict);
    CHECK_CODE(keys.rotate(kMissingId, hash3, "x"), errc::not_found);

    core::UserKeyPatch on;
    on.is_active = true;
    auto resumed = co_await keys.update(k.id, on);
    REQUIRE(resumed.has_value());
    CHECK(resumed->first.name == "ci-paused");
    CHECK(resumed->second == hash2);
    auto by_new = co_await keys.find_active(hash2);
    REQUIRE(by_new.has_value());
    CHECK(by_new->has_value());
    auto by_old = co_await keys.find_active(hash1);
    REQUIRE(by_old.has_value());
    CHECK_FALSE(by_old->has_value());

    CHECK_CODE(keys.touch_last_used(hash2), errc::ok);
    auto touched = co_await keys.get(k.id);
    REQUIRE(touched.has_value());
    REQUIRE(touched->last_used_at.has_value());
    CHECK(is_rfc3339_utc_us(*touched->last_used_at));

    auto revoked = co_await keys.revoke(k.id);
    REQUIRE(revoked.has_value());
    CHECK(*revoked == hash2);
    auto revoked_again = co_await keys.revoke(k.id);
    REQUIRE(revoked_again.has_value());
    CHECK(*revoked_again == hash2);
    CHECK_CODE(keys.revoke(kMissingId), errc::not_found);

    // A revoked key is gone for good.
    CHECK_CODE(keys.get(k.id), errc::not_found);
    CHECK_CODE(keys.update(k.id, on), errc::not_found);
    CHECK_CODE(keys.rotate(k.id, std::string(64, 'e'), "x"), errc::not_found);
    auto after = co_await keys.find_active(hash2);
    REQUIRE(after.has_value());
    CHECK_FALSE(after->has_value());
    auto left = co_await keys.list();
    REQUIRE(left.has_value());
    REQUIRE(left->size() == 1);
    CHECK((*left)[0].name == "other");
    auto remaining = co_await keys.active_records();
    REQUIRE(remaining.has_value());
    REQUIRE(remaining->size() == 1);
    CHECK((*remaining)[0].first == hash3);
    CHECK((*remaining)[0].second.name == "other");
  };
  test::run_async(body);
}

TEST_CASE("RouteRepo: only active, live models on active, live providers route", "[routes]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    auto p = co_await providers.create(new_provider("p"));
    REQUIRE(p.has_value());
    auto plain = co_await models.create(new_model("plain", p->id));
    auto aliased = co_await models.create(new_model("aliased", p->id, "upstream-name"));
    REQUIRE((plain && aliased));

    auto found = co_await routes.find("plain");
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    const core::ModelRoutes m = **found;
    CHECK(m.model_id == plain->id);
    CHECK(m.model_name == "plain");
    CHECK(m.strategy == core::Strategy::priority);
    REQUIRE(m.routes.size() == 1);
    const core::RouteTarget& r = m.routes[0];
    CHECK(r.provider_id == p->id);
    CHECK(r.provider_name == "p");
    CHECK(r.provider_kind == "openai");
    CHECK(r.base_url == "https://api.example.com/v1");
    CHECK(r.upstream_model == "plain");
    CHECK(r.route_id == plain->routes[0].id);

    auto alias = co_await routes.find("aliased");
    REQUIRE(alias.has_value());
    REQUIRE(alias->has_value());
    CHECK((*alias)->routes[0].upstream_model == "upstream-name");

    auto none = co_await routes.find("nope");
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());

    auto all = co_await routes.all();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 2);
    CHECK((*all)[0].model_name == "aliased");
    CHECK((*all)[1].model_name == "plain");

    core::ModelPatch model_off;
    model_off.is_active = false;
    REQUIRE_OK(models.update(plain->id, model_off));
    auto inactive_model = co_await routes.find("plain");
    REQUIRE(inactive_model.has_value());
    CHECK_FALSE(inactive_model->has_value());
    auto fewer = co_await routes.all();
    REQUIRE(fewer.has_value());
    CHECK(fewer->size() == 1);

    core::ProviderPatch provider_off;
    provider_off.is_active = false;
    REQUIRE_OK(providers.update(p->id, provider_off));
    auto inactive_provider = co_await routes.find("aliased");
    REQUIRE(inactive_provider.has_value());
    CHECK_FALSE(inactive_provider->has_value());
    auto empty = co_await routes.all();
    REQUIRE(empty.has_value());
    CHECK(empty->empty());

    core::ProviderPatch provider_on;
    provider_on.is_active = true;
    REQUIRE_OK(providers.update(p->id, provider_on));
    auto back = co_await routes.find("aliased");
    REQUIRE(back.has_value());
    CHECK(back->has_value());

    REQUIRE_OK(models.remove(aliased->id));
    auto deleted = co_await routes.find("aliased");
    REQUIRE(deleted.has_value());
    CHECK_FALSE(deleted->has_value());
  };
  test::run_async(body);
}

TEST_CASE("ModelRepo routes: add, order, mirror of the first route, strategy, last route kept", "[routes]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    auto a = co_await providers.create(new_provider("a"));
    auto b = co_await providers.create(new_provider("b"));
    REQUIRE((a && b));
    auto m = co_await models.create(new_model("multi", a->id, "up-a"));
    REQUIRE(m.has_value());
    REQUIRE(m->routes.size() == 1);
    CHECK(m->routes[0].provider_id == a->id);
    CHECK(m->routes[0].priority == 0);
    CHECK(m->routes[0].weight == 1);
    CHECK(m->strategy == core::Strategy::priority);

    const core::NewRoute second{b->id, std::string("up-b"), 1, 3, {}};
    auto two = co_await models.add_route(m->id, second);
    REQUIRE(two.has_value());
    REQUIRE(two->routes.size() == 2);
    CHECK(two->routes[1].provider_id == b->id);
    CHECK(two->routes[1].weight == 3);
    CHECK(two->provider_id == a->id);  // the first route still leads

    // Priority decides the order; the single-route fields follow the first route.
    core::RoutePatch first;
    first.priority = -1;
    auto moved = co_await models.update_route(m->id, two->routes[1].id, first);
    REQUIRE(moved.has_value());
    CHECK(moved->routes[0].provider_id == b->id);
    CHECK(moved->provider_id == b->id);
    CHECK(moved->provider_model_name == "up-b");

    core::ModelPatch rr;
    rr.strategy = core::Strategy::round_robin;
    REQUIRE_OK(models.update(m->id, rr));
    auto found = co_await routes.find("multi");
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK((*found)->strategy == core::Strategy::round_robin);
    REQUIRE((*found)->routes.size() == 2);
    CHECK((*found)->routes[0].upstream_model == "up-b");
    CHECK((*found)->routes[0].weight == 3);
    CHECK((*found)->routes[1].upstream_model == "up-a");

    // An inactive provider's route drops out; the model still routes through the other.
    core::ProviderPatch off;
    off.is_active = false;
    REQUIRE_OK(providers.update(b->id, off));
    auto one_left = co_await routes.find("multi");
    REQUIRE(one_left.has_value());
    REQUIRE(one_left->has_value());
    REQUIRE((*one_left)->routes.size() == 1);
    CHECK((*one_left)->routes[0].provider_id == a->id);

    // PUT provider_id on the model changes its first route.
    core::ModelPatch to_a;
    to_a.provider_id = a->id;
    auto first_is_a = co_await models.update(m->id, to_a);
    REQUIRE(first_is_a.has_value());
    CHECK(first_is_a->first.routes[0].provider_id == a->id);

    auto listed = co_await models.list();
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].routes.size() == 2);

    // Routes go, but not the last one; unknown ids are 404.
    auto removed = co_await models.remove_route(m->id, moved->routes[0].id);
    REQUIRE(removed.has_value());
    REQUIRE(removed->routes.size() == 1);
    CHECK_CODE(models.remove_route(m->id, removed->routes[0].id), errc::conflict);
    CHECK_CODE(models.remove_route(m->id, kMissingId), errc::not_found);
    const core::NewRoute bad{kMissingId, std::nullopt, 0, 1, {}};
    CHECK_CODE(models.add_route(m->id, bad), errc::invalid_request);
    CHECK_CODE(models.add_route(kMissingId, second), errc::not_found);
    core::RoutePatch nothing;
    CHECK_CODE(models.update_route(m->id, kMissingId, nothing), errc::not_found);

    REQUIRE_OK(models.remove(m->id));
    CHECK_CODE(models.get(m->id), errc::not_found);
  };
  test::run_async(body);
}

TEST_CASE("Prices: models and routes store them; the hot path takes the route's price, else the model's",
          "[routes][prices]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    auto a = co_await providers.create(new_provider("a"));
    auto b = co_await providers.create(new_provider("b"));
    REQUIRE((a && b));
    auto priced = new_model("priced", a->id);
    priced.pricing = core::Pricing{2.5, 10.0, std::nullopt};
    auto m = co_await models.create(priced);
    REQUIRE(m.has_value());
    CHECK(m->pricing.input == 2.5);
    CHECK(m->pricing.output == 10.0);
    CHECK_FALSE(m->pricing.cached_input.has_value());
    REQUIRE(m->routes.size() == 1);
    CHECK(m->routes[0].pricing.empty());  // the first route has no prices of its own

    // 0.1 is stored as typed (numeric 0.1), not as the binary double's long expansion.
    const core::NewRoute cheap{b->id, std::string("up-b"), 1, 1, core::Pricing{std::nullopt, 0.1, 1.25}};
    auto two = co_await models.add_route(m->id, cheap);
    REQUIRE(two.has_value());
    REQUIRE(two->routes.size() == 2);
    CHECK(two->routes[1].pricing.output == 0.1);
    CHECK(two->routes[1].pricing.cached_input == 1.25);
    CHECK(count_rows(
              "SELECT count(*) FROM model_routes WHERE price_output = 0.1 AND price_cached_input = 1.25") ==
          1);

    auto found = co_await routes.find("priced");
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    REQUIRE((*found)->routes.size() == 2);
    const core::Pricing first = (*found)->routes[0].pricing;  // no own prices: the model's
    CHECK(first.input == 2.5);
    CHECK(first.output == 10.0);
    CHECK_FALSE(first.cached_input.has_value());
    const core::Pricing second = (*found)->routes[1].pricing;  // field by field
    CHECK(second.input == 2.5);
    CHECK(second.output == 0.1);
    CHECK(second.cached_input == 1.25);

    // Other patches leave prices alone; a pricing patch replaces all three.
    core::ModelPatch rename;
    rename.name = "priced-2";
    auto renamed = co_await models.update(m->id, rename);
    REQUIRE(renamed.has_value());
    CHECK(renamed->first.pricing.input == 2.5);
    core::ModelPatch reprice;
    reprice.pricing = core::Pricing{std::nullopt, std::nullopt, 0.5};
    auto repriced = co_await models.update(m->id, reprice);
    REQUIRE(repriced.has_value());
    CHECK_FALSE(repriced->first.pricing.input.has_value());
    CHECK_FALSE(repriced->first.pricing.output.has_value());
    CHECK(repriced->first.pricing.cached_input == 0.5);
    CHECK(repriced->first.routes[1].pricing.output == 0.1);  // routes keep theirs

    core::RoutePatch weight_only;
    weight_only.weight = 5;
    auto reweighted = co_await models.update_route(m->id, two->routes[1].id, weight_only);
    REQUIRE(reweighted.has_value());
    CHECK(reweighted->routes[1].pricing.output == 0.1);
    core::RoutePatch clear;
    clear.pricing = core::Pricing{};
    auto cleared = co_await models.update_route(m->id, two->routes[1].id, clear);
    REQUIRE(cleared.has_value());
    CHECK(cleared->routes[1].pricing.empty());
    CHECK(cleared->routes[1].weight == 5);

    auto listed = co_await models.list();
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].pricing.cached_input == 0.5);
    auto got = co_await models.get(m->id);
    REQUIRE(got.has_value());
    CHECK(got->pricing.cached_input == 0.5);

    auto after = co_await routes.all();
    REQUIRE(after.has_value());
    REQUIRE(after->size() == 1);
    for (const auto& t : (*after)[0].routes) {
      CHECK_FALSE(t.pricing.input.has_value());
      CHECK_FALSE(t.pricing.output.has_value());
      CHECK(t.pricing.cached_input == 0.5);
    }
  };
  test::run_async(body);
}

TEST_CASE("ProviderRepo::remove with force: models keep their other routes, or are deactivated", "[providers]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    auto a = co_await providers.create(new_provider("a"));
    auto b = co_await providers.create(new_provider("b"));
    REQUIRE((a && b));
    auto both = co_await models.create(new_model("both", a->id));
    auto only_a = co_await models.create(new_model("only-a", a->id));
    REQUIRE((both && only_a));
    const core::NewRoute via_b{b->id, std::nullopt, 1, 1, {}};
    REQUIRE_OK(models.add_route(both->id, via_b));

    CHECK_CODE(providers.remove(a->id, false), errc::conflict);
    auto removed = co_await providers.remove(a->id, true);
    REQUIRE(removed.has_value());
    CHECK(removed->size() == 2);

    auto still = co_await routes.find("both");
    REQUIRE(still.has_value());
    REQUIRE(still->has_value());
    REQUIRE((*still)->routes.size() == 1);
    CHECK((*still)->routes[0].provider_id == b->id);
    auto after = co_await models.get(both->id);
    REQUIRE(after.has_value());
    CHECK(after->provider_id == b->id);
    CHECK(after->is_active);

    auto gone = co_await routes.find("only-a");
    REQUIRE(gone.has_value());
    CHECK_FALSE(gone->has_value());
    auto inactive = co_await models.get(only_a->id);
    REQUIRE(inactive.has_value());
    CHECK_FALSE(inactive->is_active);
  };
  test::run_async(body);
}

TEST_CASE("KeyRepo: model access (allowed_models, default_model) is stored and reaches the auth lookup", "[keys]") {
  auto db = fresh_db();
  storage::KeyRepo keys(*db);
  const std::string hash(64, 'd');
  auto body = [&]() -> awaitable<void> {
    const core::NewUserKey limited{"limited", {{"gpt-4o", "claude-*"}, std::string("gpt-4o")}, {}};
    auto k = co_await keys.create(limited, hash, "sk-dddd");
    REQUIRE(k.has_value());
    CHECK(k->access.allowed_models == std::vector<std::string>{"gpt-4o", "claude-*"});
    CHECK(k->access.default_model == "gpt-4o");

    auto found = co_await keys.find_active(hash);
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK((*found)->access.allowed_models.size() == 2);
    CHECK((*found)->access.default_model == "gpt-4o");
    auto records = co_await keys.active_records();
    REQUIRE(records.has_value());
    REQUIRE(records->size() == 1);
    CHECK((*records)[0].second.access.default_model == "gpt-4o");

    core::UserKeyPatch open;
    open.allowed_models = std::vector<std::string>{};
    open.default_model = std::optional<std::string>{};
    auto opened = co_await keys.update(k->id, open);
    REQUIRE(opened.has_value());
    CHECK(opened->first.access.allowed_models.empty());
    CHECK_FALSE(opened->first.access.default_model);

    core::UserKeyPatch rename;  // access untouched when absent
    rename.name = "renamed";
    const core::NewUserKey second{"second", {{"x"}, std::nullopt}, {}};
    auto k2 = co_await keys.create(second, std::string(64, 'e'), "sk-eeee");
    REQUIRE(k2.has_value());
    auto renamed = co_await keys.update(k2->id, rename);
    REQUIRE(renamed.has_value());
    CHECK(renamed->first.access.allowed_models == std::vector<std::string>{"x"});
  };
  test::run_async(body);
}

TEST_CASE("ProviderRepo: extra headers (sealed), their names, api_version", "[providers]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  auto body = [&]() -> awaitable<void> {
    auto p = new_provider("azure");
    p.kind = "azure";
    p.extra_headers_enc = "SEALED";
    p.extra_header_names = {"X-Title", "HTTP-Referer"};
    p.api_version = "2024-10-21";
    auto created = co_await providers.create(p);
    REQUIRE(created.has_value());
    CHECK(created->extra_header_names == std::vector<std::string>{"X-Title", "HTTP-Referer"});
    CHECK(created->api_version == "2024-10-21");
    auto secret = co_await providers.secret(created->id);
    REQUIRE(secret.has_value());
    CHECK(secret->extra_headers_enc == "SEALED");

    core::ProviderPatch clear;
    clear.extra_headers_enc = std::string();
    clear.extra_header_names = std::vector<std::string>{};
    clear.api_version = std::optional<std::string>{};
    auto cleared = co_await providers.update(created->id, clear);
    REQUIRE(cleared.has_value());
    CHECK(cleared->extra_header_names.empty());
    CHECK_FALSE(cleared->api_version);
    auto after = co_await providers.secret(created->id);
    REQUIRE(after.has_value());
    CHECK(after->extra_headers_enc.empty());
    CHECK(after->api_key_enc == "ENC");
  };
  test::run_async(body);
}

core::KeyLimits all_limits() {
  core::KeyLimits l;
  l.rpm = 60;
  l.rpd = 1000;
  l.tpm = 90000;
  l.token_budget = 1'000'000'000'000;
  l.budget_usd = 0.1;  // reads back as the same double
  l.max_parallel = 4;
  return l;
}

bool same_limits(const core::KeyLimits& a, const core::KeyLimits& b) {
  return a.rpm == b.rpm && a.rpd == b.rpd && a.tpm == b.tpm && a.token_budget == b.token_budget &&
         a.budget_usd == b.budget_usd && a.max_parallel == b.max_parallel;
}

TEST_CASE("KeyRepo: limits round-trip through create, get, list, lookups, update (per field), rotate",
          "[keys][limits]") {
  auto db = fresh_db();
  storage::KeyRepo keys(*db);
  const std::string hash(64, 'a'), rotated_hash(64, 'b');
  auto body = [&]() -> awaitable<void> {
    core::NewUserKey limited{"limited", {}, all_limits()};
    auto k = co_await keys.create(limited, hash, "sk-aaaa");
    REQUIRE(k.has_value());
    CHECK(same_limits(k->limits, all_limits()));
    const core::NewUserKey open{"open", {}, {}};
    auto unlimited = co_await keys.create(open, std::string(64, 'c'), "sk-cccc");
    REQUIRE(unlimited.has_value());
    CHECK_FALSE(unlimited->limits.any());

    auto got = co_await keys.get(k->id);
    REQUIRE(got.has_value());
    CHECK(same_limits(got->limits, all_limits()));
    auto listed = co_await keys.list();
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 2);
    CHECK(same_limits((*listed)[0].limits, all_limits()));
    CHECK_FALSE((*listed)[1].limits.any());
    auto found = co_await keys.find_active(hash);
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK(same_limits((*found)->limits, all_limits()));
    auto records = co_await keys.active_records();
    REQUIRE(records.has_value());
    REQUIRE(records->size() == 2);
    for (const auto& [h, record] : *records)
      CHECK(same_limits(record.limits, h == hash ? all_limits() : core::KeyLimits{}));

    // Absent keeps, null removes, a value sets; other fields and limits stay.
    core::UserKeyPatch patch;
    patch.limits.rpm = std::optional<std::int64_t>(120);
    patch.limits.tpm = std::optional<std::int64_t>{};
    patch.limits.budget_usd = std::optional<double>(25.75);
    patch.limits.max_parallel = std::optional<std::int64_t>{};
    auto updated = co_await keys.update(k->id, patch);
    REQUIRE(updated.has_value());
    core::KeyLimits expected = all_limits();
    expected.rpm = 120;
    expected.tpm = std::nullopt;
    expected.budget_usd = 25.75;
    expected.max_parallel = std::nullopt;
    CHECK(same_limits(updated->first.limits, expected));
    CHECK(updated->first.name == "limited");
    core::UserKeyPatch rename;
    rename.name = "renamed";
    auto renamed = co_await keys.update(k->id, rename);
    REQUIRE(renamed.has_value());
    CHECK(same_limits(renamed->first.limits, expected));
    auto refound = co_await keys.find_active(hash);
    REQUIRE(refound.has_value());
    REQUIRE(refound->has_value());
    CHECK(same_limits((*refound)->limits, expected));

    core::UserKeyPatch set_open;  // a value on a key without limits
    set_open.limits.rpd = std::optional<std::int64_t>(5);
    set_open.limits.budget_usd = std::optional<double>(0.0);
    auto opened = co_await keys.update(unlimited->id, set_open);
    REQUIRE(opened.has_value());
    CHECK(opened->first.limits.rpd == 5);
    CHECK(opened->first.limits.budget_usd == 0.0);
    CHECK_FALSE(opened->first.limits.rpm);

    auto rotated = co_await keys.rotate(k->id, rotated_hash, "sk-bbbb");
    REQUIRE(rotated.has_value());
    CHECK(rotated->second == hash);
    CHECK(same_limits(rotated->first.limits, expected));

    // What the columns' CHECKs refuse is a 400 naming the field, before any SQL.
    core::NewUserKey zero_rpm{"bad", {}, {}};
    zero_rpm.limits.rpm = 0;
    auto refused = co_await keys.create(zero_rpm, std::string(64, 'd'), "sk-dddd");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::invalid_request);
    CHECK(refused.error().param == "rpm");
    core::UserKeyPatch negative;
    negative.limits.budget_usd = std::optional<double>(-1.0);
    auto refused_update = co_await keys.update(k->id, negative);
    REQUIRE_FALSE(refused_update.has_value());
    CHECK(refused_update.error().param == "budget_usd");
  };
  test::run_async(body);
}

TEST_CASE("KeyRepo: reset_usage zeroes the budget usage and moves budget_reset_at; budget_usage(s)",
          "[keys][limits]") {
  auto db = fresh_db();
  storage::KeyRepo keys(*db);
  auto body = [&]() -> awaitable<void> {
    core::NewUserKey tokens{"tokens", {}, {}}, dollars{"dollars", {}, {}}, rate_only{"rate", {}, {}};
    tokens.limits.token_budget = 1000;
    dollars.limits.budget_usd = 5;
    rate_only.limits.rpm = 10;
    auto t = co_await keys.create(tokens, std::string(64, 'a'), "sk-a");
    auto d = co_await keys.create(dollars, std::string(64, 'b'), "sk-b");
    auto r = co_await keys.create(rate_only, std::string(64, 'c'), "sk-c");
    REQUIRE((t && d && r));
    {
      pqxx::connection conn(test::db_url());
      pqxx::nontransaction tx(conn);
      tx.exec("INSERT INTO key_budget_usage VALUES ('" + t->id + "', 700, 0), ('" + r->id + "', 9, 9)");
      tx.exec("UPDATE user_keys SET budget_reset_at = now() - interval '1 day'");
    }

    auto used = co_await keys.budget_usage(t->id);
    REQUIRE(used.has_value());
    CHECK(*used == std::pair<std::int64_t, std::int64_t>{700, 0});
    auto unused = co_await keys.budget_usage(d->id);  // no row yet
    REQUIRE(unused.has_value());
    CHECK(*unused == std::pair<std::int64_t, std::int64_t>{0, 0});
    CHECK_CODE(keys.budget_usage(kMissingId), errc::not_found);

    // Only keys with a budget, by id.
    auto all = co_await keys.budget_usages();
    REQUIRE(all.has_value());
    std::vector<storage::KeyRepo::BudgetUsage> expected{{t->id, 700, 0}, {d->id, 0, 0}};
    std::sort(expected.begin(), expected.end());
    CHECK(*all == expected);

    core::UserKeyPatch reset;
    reset.reset_usage = true;
    auto after = co_await keys.update(t->id, reset);
    REQUIRE(after.has_value());
    CHECK(same_limits(after->first.limits, tokens.limits));
    auto zeroed = co_await keys.budget_usage(t->id);
    REQUIRE(zeroed.has_value());
    CHECK(*zeroed == std::pair<std::int64_t, std::int64_t>{0, 0});
    CHECK(count_rows("SELECT count(*) FROM user_keys WHERE budget_reset_at > now() - interval '1 minute'") == 1);
    CHECK(count_rows("SELECT count(*) FROM user_keys WHERE id = '" + t->id +
                     "' AND budget_reset_at = updated_at") == 1);
    // Another key's usage is untouched, and a reset without a usage row is fine.
    CHECK(count_rows("SELECT tokens FROM key_budget_usage WHERE key_id = '" + r->id + "'") == 9);
    auto reset_other = co_await keys.update(d->id, reset);
    REQUIRE(reset_other.has_value());
    core::UserKeyPatch no_reset;  // reset_usage false: budget_reset_at stays
    no_reset.name = "dollars-2";
    auto renamed = co_await keys.update(r->id, no_reset);
    REQUIRE(renamed.has_value());
    CHECK(count_rows("SELECT count(*) FROM user_keys WHERE id = '" + r->id +
                     "' AND budget_reset_at < now() - interval '1 hour'") == 1);

    CHECK_OK(keys.revoke(d->id));
    CHECK_CODE(keys.budget_usage(d->id), errc::not_found);
    auto left = co_await keys.budget_usages();
    REQUIRE(left.has_value());
    REQUIRE(left->size() == 1);
    CHECK(std::get<0>((*left)[0]) == t->id);
  };
  test::run_async(body);
}

TEST_CASE("ProviderRepo: rpm / rpd round-trip and reach RouteTarget::provider_limits", "[providers][limits]") {
  auto db = fresh_db();
  storage::ProviderRepo providers(*db);
  storage::ModelRepo models(*db);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    auto limited = new_provider("limited");
    limited.limits.rpm = 500;
    limited.limits.rpd = 100000;
    auto p = co_await providers.create(limited);
    REQUIRE(p.has_value());
    CHECK(p->limits.rpm == 500);
    CHECK(p->limits.rpd == 100000);
    const auto open_provider = new_provider("open");
    auto q = co_await providers.create(open_provider);
    REQUIRE(q.has_value());
    CHECK_FALSE(q->limits.any());
    auto got = co_await providers.get(p->id);
    REQUIRE(got.has_value());
    CHECK(got->limits.rpd == 100000);
    auto listed = co_await providers.list();
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 2);
    CHECK((*listed)[0].limits.rpm == 500);

    const auto m1 = new_model("m1", p->id), m2 = new_model("m2", q->id);
    REQUIRE_OK(models.create(m1));
    REQUIRE_OK(models.create(m2));
    auto found = co_await routes.find("m1");
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK((*found)->routes.at(0).provider_limits.rpm == 500);
    CHECK((*found)->routes.at(0).provider_limits.rpd == 100000);

    core::ProviderPatch patch;  // rpm removed, rpd changed
    patch.rpm = std::optional<std::int64_t>{};
    patch.rpd = std::optional<std::int64_t>(7);
    auto updated = co_await providers.update(p->id, patch);
    REQUIRE(updated.has_value());
    CHECK_FALSE(updated->limits.rpm);
    CHECK(updated->limits.rpd == 7);
    core::ProviderPatch rename;  // absent: kept
    rename.name = "limited-2";
    auto renamed = co_await providers.update(p->id, rename);
    REQUIRE(renamed.has_value());
    CHECK(renamed->limits.rpd == 7);
    core::ProviderPatch set_open;
    set_open.rpm = std::optional<std::int64_t>(3);
    auto opened = co_await providers.update(q->id, set_open);
    REQUIRE(opened.has_value());
    CHECK(opened->limits.rpm == 3);

    auto all = co_await routes.all();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 2);
    CHECK_FALSE((*all)[0].routes.at(0).provider_limits.rpm);
    CHECK((*all)[0].routes.at(0).provider_limits.rpd == 7);
    CHECK((*all)[1].routes.at(0).provider_limits.rpm == 3);
    CHECK_FALSE((*all)[1].routes.at(0).provider_limits.rpd);

    core::ProviderPatch zero;
    zero.rpd = std::optional<std::int64_t>(0);
    auto refused = co_await providers.update(p->id, zero);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::invalid_request);
    CHECK(refused.error().param == "rpd");
    auto bad = new_provider("bad");
    bad.limits.rpm = -1;
    CHECK_CODE(providers.create(bad), errc::invalid_request);
  };
  test::run_async(body);
}

TEST_CASE("hung server: run gives up at statement_timeout on the caller's side", "[db][hang]") {
  auto o = options();
  o.threads = 1;
  o.statement_timeout = 500ms;
  auto db = fresh_db(o);
  warm_up(*db);  // an open session, so the query below is sent and never answered

  errc code = errc::ok;
  std::chrono::milliseconds waited{};
  std::chrono::milliseconds io_ran{};
  {
    test::FrozenServer frozen(5s);
    auto body = [&]() -> awaitable<void> {
      auto query = hanging_query(std::make_shared<std::atomic<bool>>(false));
      const auto start = Clock::now();
      code = code_of(co_await db->run<core::Unit>(query));
      waited = ms_since(start);
    };
    const auto start = Clock::now();
    test::run_async(body);  // io_context::run() returns: the pool holds no work on it
    io_ran = ms_since(start);
  }
  CHECK(code == errc::db_unavailable);
  CHECK(waited >= 450ms);
  CHECK(waited < 1500ms);
  CHECK(io_ran < 1500ms);
  WARN("caller gave up after " << waited.count() << " ms; io_context::run() took " << io_ran.count()
                               << " ms");
}

TEST_CASE("hung server: a job whose deadline passed in the queue is never executed", "[db][hang]") {
  auto o = options();
  o.threads = 1;
  o.statement_timeout = 500ms;
  auto db = fresh_db(o);
  warm_up(*db);
  auto executed = std::make_shared<std::atomic<bool>>(false);
  {
    test::FrozenServer frozen(5s);
    auto body = [&]() -> awaitable<void> {
      auto executor = co_await boost::asio::this_coro::executor;
      auto started = std::make_shared<std::atomic<bool>>(false);
      auto hang = hanging_query(started);
      std::optional<errc> hung_code;
      auto hung_call = [&]() -> awaitable<void> { hung_code = code_of(co_await db->run<core::Unit>(hang)); };
      boost::asio::co_spawn(executor, hung_call(), boost::asio::detached);
      auto is_started = [&] { return started->load(); };
      const bool stuck = co_await wait_until(is_started);
      REQUIRE(stuck);  // the only pool thread now waits for the frozen server

      auto insert = [executed](pqxx::connection& c) -> core::Status {
        *executed = true;
        pqxx::nontransaction tx(c);
        tx.exec("INSERT INTO user_keys (name, key_hash, key_prefix) VALUES ('late', repeat('e', 64), 'p')");
        return core::ok();
      };
      CHECK_CODE(db->run<core::Unit>(insert), errc::db_unavailable);
      auto hung_done = [&] { return hung_code.has_value(); };
      const bool done = co_await wait_until(hung_done);
      REQUIRE(done);
      CHECK(*hung_code == errc::db_unavailable);
    };
    test::run_async(body);
  }
  // Thawed: the hung query ends, the worker takes the insert off the queue and must drop it. The
  // ping is queued behind it, so once it answers the insert's fate is settled.
  auto after = [&]() -> awaitable<void> { CHECK_CODE(db->ping(), errc::ok); };
  test::run_async(after);
  CHECK_FALSE(executed->load());
  CHECK(count_rows("SELECT count(*) FROM user_keys WHERE name = 'late'") == 0);
}

TEST_CASE("hung server: stop() returns within its bound; queued jobs get shutting_down at once",
          "[db][hang]") {
  auto o = options();
  o.threads = 1;
  o.statement_timeout = 30s;  // only stop() can end the hung query here
  auto db = fresh_db(o);
  warm_up(*db);
  test::FrozenServer frozen(10s);
  auto body = [&]() -> awaitable<void> {
    auto executor = co_await boost::asio::this_coro::executor;
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto hang = hanging_query(started);
    auto never = hanging_query(std::make_shared<std::atomic<bool>>(false));
    std::optional<errc> running_code, queued_code;
    Clock::time_point queued_done_at;
    bool queued_submitted = false;
    auto running = [&]() -> awaitable<void> { running_code = code_of(co_await db->run<core::Unit>(hang)); };
    auto queued = [&]() -> awaitable<void> {
      queued_submitted = true;  // run() submits before it first suspends
      queued_code = code_of(co_await db->run<core::Unit>(never));
      queued_done_at = Clock::now();
    };
    boost::asio::co_spawn(executor, running(), boost::asio::detached);
    auto is_started = [&] { return started->load(); };
    const bool stuck = co_await wait_until(is_started);
    REQUIRE(stuck);
    boost::asio::co_spawn(executor, queued(), boost::asio::detached);
    auto is_submitted = [&] { return queued_submitted; };
    const bool submitted = co_await wait_until(is_submitted);
    REQUIRE(submitted);

    // From another thread, so this io_context goes on delivering results meanwhile.
    const auto stop_start = Clock::now();
    std::atomic<bool> stopped{false};
    std::chrono::milliseconds stop_took{};
    std::thread stopper([&] {
      db->stop(500ms);
      stop_took = ms_since(stop_start);
      stopped = true;
    });
    auto all_done = [&] { return stopped.load() && running_code && queued_code; };
    const bool done = co_await wait_until(all_done, 15s);
    stopper.join();
    REQUIRE(done);
    CHECK(*queued_code == errc::shutting_down);
    const auto queued_after =
        std::chrono::duration_cast<std::chrono::milliseconds>(queued_done_at - stop_start);
    CHECK(queued_after < 400ms);  // at once, not after the grace period
    CHECK(*running_code == errc::db_unavailable);
    CHECK(stop_took >= 450ms);
    CHECK(stop_took < 3s);
    WARN("queued job answered after " << queued_after.count() << " ms; stop(500ms) took " << stop_took.count()
                                      << " ms");
  };
  test::run_async(body);
  auto after_stop = [&]() -> awaitable<void> { CHECK_CODE(db->ping(), errc::shutting_down); };
  test::run_async(after_stop);
}

TEST_CASE("an io_context destroyed with a call still waiting: the pool leaves it alone afterwards", "[db]") {
  auto o = options();
  o.threads = 1;
  auto db = fresh_db(o);
  auto gate = std::make_shared<Gate>();
  {
    boost::asio::io_context io;
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto blocked = [gate, started](pqxx::connection&) -> core::Result<int> {
      *started = true;
      gate->wait();
      return 1;
    };
    bool resumed = false;
    auto call = [&]() -> awaitable<void> {
      (void)co_await db->run<int>(blocked);
      resumed = true;
    };
    boost::asio::co_spawn(io, call(), boost::asio::detached);
    const auto give_up = Clock::now() + 5s;
    while (!*started && Clock::now() < give_up) io.run_one_for(10ms);
    REQUIRE(started->load());
    CHECK_FALSE(resumed);
  }              // the suspended call dies with its io_context
  gate->open();  // the pool now completes a job whose caller is gone (ASan would see a bad post)
  auto next = [&]() -> awaitable<void> { CHECK_CODE(db->ping(), errc::ok); };
  test::run_async(next);
}

TEST_CASE("read runs once more on a new connection when its session died; run does not", "[db]") {
  auto o = options();
  o.threads = 1;
  auto db = fresh_db(o);
  auto body = [&]() -> awaitable<void> {
    auto calls = std::make_shared<std::atomic<int>>(0);
    // The first call ends its own session mid-job, as a server restart or a broken link would.
    auto dies_once = [calls](pqxx::connection& c) -> core::Result<int> {
      pqxx::nontransaction tx(c);
      if (++*calls == 1) tx.exec("SELECT pg_terminate_backend(pg_backend_pid())");
      return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
    };

    REQUIRE_OK(db->ping());  // the session exists before the job
    const auto read = co_await db->read<int>(dies_once);
    CHECK(read.has_value());
    CHECK(calls->load() == 2);

    REQUIRE_OK(db->ping());
    *calls = 0;
    CHECK_CODE(db->run<int>(dies_once), errc::db_unavailable);
    CHECK(calls->load() == 1);  // a write is never run twice
    CHECK_CODE(db->ping(), errc::ok);
  };
  test::run_async(body);
}

TEST_CASE("after a server restart the first read on every pooled connection succeeds; writes run once",
          "[db][outage]") {
  auto o = options();
  o.threads = 2;
  auto db = fresh_db(o);
  // Two reads at once, held together so each provably runs on its own pool connection; their
  // backend pids, or the first error.
  auto read_on_both = [&]() -> awaitable<core::Result<std::vector<int>>> {
    auto executor = co_await boost::asio::this_coro::executor;
    auto together = std::make_shared<Rendezvous>(2);
    auto pid = [together](pqxx::connection& c) -> core::Result<int> {
      pqxx::nontransaction tx(c);
      const int backend = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
      if (!together->arrive_and_wait()) return errc::internal;
      return backend;
    };
    std::vector<core::Result<int>> results;
    auto one = [&]() -> awaitable<void> { results.push_back(co_await db->read<int>(pid)); };
    boost::asio::co_spawn(executor, one(), boost::asio::detached);
    boost::asio::co_spawn(executor, one(), boost::asio::detached);
    auto both = [&] { return results.size() == 2; };
    const bool done = co_await wait_until(both, 10s);
    if (!done) co_return errc::internal;
    std::vector<int> pids;
    for (auto& r : results) {
      if (!r) co_return r.error();
      pids.push_back(*r);
    }
    co_return pids;
  };

  auto body = [&]() -> awaitable<void> {
    const auto before = co_await read_on_both();  // both connections open
    REQUIRE(before.has_value());
    REQUIRE((*before)[0] != (*before)[1]);

    test::postgres().restart();
    const auto after = co_await read_on_both();
    REQUIRE(after.has_value());
    CHECK((*after)[0] != (*after)[1]);
    for (const int pid : *after) CHECK(std::find(before->begin(), before->end(), pid) == before->end());

    // A write may fail after a restart (it cannot know whether the server got it), but it must
    // never run twice.
    REQUIRE_OK(db->ping());
    test::postgres().restart();
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto insert = [calls](pqxx::connection& c) -> core::Status {
      ++*calls;
      pqxx::nontransaction tx(c);
      tx.exec("INSERT INTO user_keys (name, key_hash, key_prefix) VALUES ('once', repeat('f', 64), 'p')");
      return core::ok();
    };
    const errc code = code_of(co_await db->run<core::Unit>(insert));
    CHECK((code == errc::ok || code == errc::db_unavailable));
    CHECK(calls->load() == 1);
    CHECK(count_rows("SELECT count(*) FROM user_keys WHERE name = 'once'") == (code == errc::ok ? 1 : 0));
  };
  test::run_async(body);
}

// Declared last: it stops and restarts the server.
TEST_CASE("database down -> db_unavailable, and the pool reconnects afterwards", "[db][outage]") {
  auto o = options();
  o.threads = 1;  // one connection, so every call below exercises the same slot
  auto db = fresh_db(o);
  storage::RouteRepo routes(*db);
  auto body = [&]() -> awaitable<void> {
    CHECK_CODE(db->ping(), errc::ok);  // connection established

    test::postgres().stop();
    CHECK_CODE(db->ping(), errc::db_unavailable);  // the open session broke
    CHECK_CODE(db->ping(), errc::db_unavailable);  // reconnecting fails
    CHECK_CODE(routes.find("anything"), errc::db_unavailable);

    test::postgres().start();
    CHECK_CODE(db->ping(), errc::ok);
    auto none = co_await routes.find("anything");
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
  };
  test::run_async(body);
}
