#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "cache/limiter.hpp"
#include "test/cache/redis_fixture.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

// Integration tests of cache::Limiter against a throwaway redis-server. The limiter's clock is Redis
// TIME plus an offset, so moving in time is done with limiters of other offsets on the same Redis
// (like replicas whose clocks are ahead) rather than by sleeping; only lease expiry really waits.
// Reconcile, release and renew are queued without waiting: an awaited command on the same
// connection afterwards (sync()) comes back only after their replies.

using namespace test_redis;
using cache::AdmitResult;
using cache::KeyAdmit;
using cache::Limiter;
using cache::ProviderCandidate;
using core::LimitReason;
using core::Millis;

// Catch would evaluate an awaited expression again under GCC 12 (see CO_REQUIRE): store it, then check.
#define CO_CHECK_EQ(awaited, expected) \
  do {                                 \
    const auto co_value_ = (awaited);  \
    INFO(#awaited);                    \
    CHECK(co_value_ == (expected));    \
  } while (0)

namespace {

constexpr std::int64_t kDayMs = 86'400'000;
constexpr Millis kLongLease{30'000};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::int64_t ms_to_midnight() {
  const auto now = wall_ms();
  return (now / kDayMs + 1) * kDayMs - now;
}
// An offset that puts the limiter's clock at about 12:00 UTC today: far from a day boundary.
Millis noon_offset() {
  const auto now = wall_ms();
  return Millis(now / kDayMs * kDayMs + kDayMs / 2 - now);
}

std::string next_id() {
  static int n = 0;
  return "adm-" + std::to_string(++n);
}

KeyAdmit key_of(std::string id, core::KeyLimits l, std::int64_t est_tokens = 0, std::int64_t est_micro = 0) {
  KeyAdmit k;
  k.key_id = std::move(id);
  k.limits = l;
  k.est_tokens = est_tokens;
  k.est_micro_usd = est_micro;
  return k;
}

ProviderCandidate provider_of(std::string id, std::optional<std::int64_t> rpm,
                              std::optional<std::int64_t> rpd) {
  ProviderCandidate p;
  p.provider_id = std::move(id);
  p.limits.rpm = rpm;
  p.limits.rpd = rpd;
  return p;
}

// The names the limiter gives a key's and a provider's counters (prefix "t:" in every test).
std::string kname(const std::string& key_id, const std::string& what) {
  return "t:rl:{k:" + key_id + "}:" + what;
}
std::string pname(const std::string& provider_id, const std::string& what) {
  return "t:rl:{providers}:" + provider_id + ":" + what;
}

struct Admitted {
  AdmitResult r;
  std::string id;
};

// One admission of `k` without provider candidates; the transport must succeed.
asio::awaitable<Admitted> admit(Limiter& lim, const KeyAdmit& k) {
  std::vector<ProviderCandidate> none;
  std::string id = next_id();
  auto r = co_await lim.admit(&k, none, id);
  REQUIRE(r);
  co_return Admitted{std::move(*r), std::move(id)};
}

// One admission of providers only.
asio::awaitable<Admitted> admit_providers(Limiter& lim, const std::vector<ProviderCandidate>& cands) {
  std::string id = next_id();
  auto r = co_await lim.admit(nullptr, cands, id);
  REQUIRE(r);
  co_return Admitted{std::move(*r), std::move(id)};
}

// Waits for every command queued before it on this connection (replies come in order). Twice: a
// NOSCRIPT reply to a queued script queues it again by text, behind the first PING.
asio::awaitable<void> sync(cache::RedisClient& c) {
  auto a = co_await cmd(c, "PING");
  REQUIRE(a);
  auto b = co_await cmd(c, "PING");
  REQUIRE(b);
}

asio::awaitable<std::int64_t> zcard(cache::RedisClient& c, const std::string& key) {
  auto r = co_await cmd(c, "ZCARD", key);
  REQUIRE(r);
  REQUIRE(r->type == Reply::Type::integer);
  co_return r->integer;
}

// A hash field as a number; -1 when absent.
asio::awaitable<std::int64_t> hget(cache::RedisClient& c, const std::string& key, const std::string& field) {
  auto r = co_await cmd(c, "HGET", key, field);
  REQUIRE(r);
  if (r->type == Reply::Type::nil) co_return -1;
  REQUIRE(r->type == Reply::Type::string);
  co_return std::stoll(r->str);
}

asio::awaitable<std::vector<std::pair<std::string, std::string>>> hgetall(cache::RedisClient& c,
                                                                          const std::string& key) {
  auto r = co_await cmd(c, "HGETALL", key);
  REQUIRE(r);
  REQUIRE(r->type == Reply::Type::array);
  std::vector<std::pair<std::string, std::string>> fields;
  for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2)
    fields.emplace_back(r->elements[i].str, r->elements[i + 1].str);
  co_return fields;
}

// The tokens in a key's tpm window (the sum of its per-second buckets), checked against the
// running sum the scripts keep beside them.
asio::awaitable<std::int64_t> tok_sum(cache::RedisClient& c, const std::string& key_id) {
  const auto fields = co_await hgetall(c, kname(key_id, "tok"));
  std::int64_t buckets = 0, running = 0;
  for (const auto& [name, value] : fields) {
    if (name == "sum")
      running = std::stoll(value);
    else if (name != "lo")
      buckets += std::stoll(value);
  }
  CHECK(running == buckets);
  co_return buckets;
}

// How many budget reservations a key holds, checked against the running totals beside them.
asio::awaitable<std::int64_t> reservations(cache::RedisClient& c, const std::string& key_id) {
  const auto fields = co_await hgetall(c, kname(key_id, "rsv"));
  std::int64_t count = 0, tokens = 0, micro = 0, total_tokens = 0, total_micro = 0;
  for (const auto& [name, value] : fields) {
    if (name == "#t") {
      total_tokens = std::stoll(value);
    } else if (name == "#m") {
      total_micro = std::stoll(value);
    } else {
      ++count;
      const auto colon = value.find(':');
      REQUIRE(colon != std::string::npos);
      tokens += std::stoll(value.substr(0, colon));
      micro += std::stoll(value.substr(colon + 1));
    }
  }
  CHECK(total_tokens == tokens);
  CHECK(total_micro == micro);
  co_return count;
}

// HGETALL commands Redis ran since its statistics were last reset (scripts' included).
asio::awaitable<std::int64_t> hgetall_calls(cache::RedisClient& c) {
  auto stats = co_await cmd(c, "INFO", "commandstats");
  REQUIRE(stats);
  const std::string_view tag = "cmdstat_hgetall:calls=";
  const auto at = stats->str.find(tag);
  co_return at == std::string::npos ? 0 : std::stoll(stats->str.substr(at + tag.size()));
}

asio::awaitable<std::vector<std::string>> all_keys(cache::RedisClient& c) {
  auto r = co_await cmd(c, "KEYS", "*");
  REQUIRE(r);
  REQUIRE(r->type == Reply::Type::array);
  std::vector<std::string> keys;
  for (const auto& e : r->elements) keys.push_back(e.str);
  std::sort(keys.begin(), keys.end());
  co_return keys;
}

// A second client on the same Redis (another replica), stopped when the test body ends however it ends.
struct SecondClient {
  std::shared_ptr<cache::RedisClient> client;
  SecondClient(Fixture& f, cache::RedisOptions o) {
    client = std::make_shared<cache::RedisClient>(f.io.get_executor(), std::move(o));
    client->start();
  }
  ~SecondClient() { client->stop(); }
  SecondClient(const SecondClient&) = delete;
  SecondClient& operator=(const SecondClient&) = delete;
};

cache::RedisOptions patient(const Fixture& f) {
  auto o = f.options();
  o.command_timeout = 10s;  // hundreds of scripts at once, in a Debug or ASan build
  return o;
}

// `n` admissions of `k` at once, alternating between `limiters`; returns the admitted ones.
struct Burst {
  std::vector<Admitted> admitted;
  std::vector<core::Admission> refused;
  int errors = 0;
};
asio::awaitable<Burst> burst(std::vector<Limiter*> limiters, const KeyAdmit& k, int n) {
  Burst out;
  int finished = 0;
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < n; ++i) {
    Limiter* lim = limiters[static_cast<std::size_t>(i) % limiters.size()];
    auto one = [lim, &k, &out]() -> asio::awaitable<void> {
      std::vector<ProviderCandidate> none;
      std::string id = next_id();
      auto r = co_await lim->admit(&k, none, id);
      if (!r)
        ++out.errors;
      else if (r->key.admitted)
        out.admitted.push_back({std::move(*r), std::move(id)});
      else
        out.refused.push_back(std::move(r->key));
    };
    auto count = [&finished](std::exception_ptr) { ++finished; };
    asio::co_spawn(ex, one, count);
  }
  auto all_finished = [&] { return finished == n; };
  CO_REQUIRE(co_await eventually(all_finished, 15s));
  co_return out;
}

}  // namespace

TEST_CASE("limiter: rpm allows exactly rpm requests a minute, with headers") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);
    core::KeyLimits l;
    l.rpm = 5;
    const auto k = key_of("rpm", l);
    CHECK(lim.lease() == kLongLease);

    for (int i = 1; i <= 5; ++i) {
      auto a = co_await admit(lim, k);
      REQUIRE(a.r.key.admitted);
      CHECK(a.r.key.reason == LimitReason::none);
      CHECK(!a.r.key.retry_after);
      CHECK(a.r.key.headers.limit_requests == 5);
      CHECK(a.r.key.headers.remaining_requests == 5 - i);
      REQUIRE(a.r.key.headers.reset_requests);
      CHECK(a.r.key.headers.reset_requests->count() > 59'000);
      CHECK(a.r.key.headers.reset_requests->count() <= 60'000);
      CHECK(!a.r.key.headers.limit_tokens);
      CHECK(!a.r.key.headers.budget_tokens_left);
      CHECK(!a.r.key.headers.budget_micro_usd_left);
      CHECK(a.r.key.reserved_tokens == 0);
      CHECK(!a.r.provider);  // no candidates: no provider chosen
      CHECK(!a.r.provider_retry);
      CHECK(std::abs(a.r.at_ms - wall_ms()) < 5'000);  // Redis's time, same host
    }
    auto refused = co_await admit(lim, k);
    CHECK(!refused.r.key.admitted);
    CHECK(refused.r.key.reason == LimitReason::rpm);
    CHECK(!core::is_quota(refused.r.key.reason));
    REQUIRE(refused.r.key.retry_after);
    CHECK(refused.r.key.retry_after->count() > 59'000);
    CHECK(refused.r.key.retry_after->count() <= 60'000);
    CHECK(refused.r.key.headers.limit_requests == 5);
    CHECK(refused.r.key.headers.remaining_requests == 0);
    CHECK(refused.r.key.reserved_tokens == 0);
    // A refusal counts nothing.
    CO_CHECK_EQ(co_await zcard(c, kname("rpm", "rpm")), 5);
    auto again = co_await admit(lim, k);
    CHECK(again.r.key.reason == LimitReason::rpm);
    CO_CHECK_EQ(co_await zcard(c, kname("rpm", "rpm")), 5);

    std::vector<std::pair<std::string, std::string>> h;
    refused.r.key.headers.append_to(h);
    REQUIRE(h.size() == 3);
    CHECK(h[0] == std::pair<std::string, std::string>{"x-ratelimit-limit-requests", "5"});
    CHECK(h[1] == std::pair<std::string, std::string>{"x-ratelimit-remaining-requests", "0"});

    // Another key is counted apart.
    const auto other = key_of("rpm-other", l);
    auto o = co_await admit(lim, other);
    CHECK(o.r.key.admitted);
    CHECK(o.r.key.headers.remaining_requests == 4);
  };
  f.run(body);
}

TEST_CASE("limiter: rpm is exact under concurrency, across two replicas") {
  Fixture f;
  f.make_client(patient(f));
  auto body = [&]() -> asio::awaitable<void> {
    CO_REQUIRE(co_await f.client->wait_connected(2s));
    SecondClient second(f, patient(f));
    CO_REQUIRE(co_await second.client->wait_connected(2s));
    Limiter a(f.client, "t:", Millis(0), kLongLease), b(second.client, "t:", Millis(0), kLongLease);
    core::KeyLimits l;
    l.rpm = 50;
    const auto k = key_of("busy", l);

    std::vector<Limiter*> both{&a, &b};
    auto out = co_await burst(both, k, 200);
    CHECK(out.errors == 0);
    CHECK(out.admitted.size() == 50);
    CHECK(out.refused.size() == 150);
    for (const auto& r : out.refused) CHECK(r.reason == LimitReason::rpm);
    // Every remaining count from 49 down to 0 was handed out exactly once.
    std::vector<std::int64_t> remaining;
    for (const auto& x : out.admitted) remaining.push_back(x.r.key.headers.remaining_requests.value_or(-1));
    std::sort(remaining.begin(), remaining.end());
    bool each_once = remaining.size() == 50;
    for (std::size_t i = 0; each_once && i < remaining.size(); ++i)
      each_once = remaining[i] == static_cast<std::int64_t>(i);
    CHECK(each_once);
    CO_CHECK_EQ(co_await zcard(*f.client, kname("busy", "rpm")), 50);
  };
  f.run(body);
}

TEST_CASE("limiter: rpm is a sliding window of 60 s") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    CO_REQUIRE(co_await f.client->wait_connected(2s));
    Limiter now(f.client, "t:", Millis(0), kLongLease);
    Limiter later30(f.client, "t:", Millis(30'000), kLongLease);  // a replica whose clock is 30 s ahead
    Limiter later61(f.client, "t:", Millis(61'000), kLongLease);
    core::KeyLimits l;
    l.rpm = 5;
    const auto k = key_of("slide", l);

    for (int i = 0; i < 5; ++i) {
      auto a = co_await admit(now, k);
      CHECK(a.r.key.admitted);
    }
    auto refused = co_await admit(now, k);
    CHECK(refused.r.key.reason == LimitReason::rpm);

    // 30 s later the requests are still in the window; they leave it 60 s after they were made.
    auto mid = co_await admit(later30, k);
    CHECK(!mid.r.key.admitted);
    CHECK(mid.r.key.reason == LimitReason::rpm);
    REQUIRE(mid.r.key.retry_after);
    CHECK(mid.r.key.retry_after->count() > 29'000);
    CHECK(mid.r.key.retry_after->count() <= 30'000);

    for (int i = 1; i <= 5; ++i) {
      auto a = co_await admit(later61, k);
      REQUIRE(a.r.key.admitted);
      CHECK(a.r.key.headers.remaining_requests == 5 - i);
      CHECK(a.r.at_ms - refused.r.at_ms >= 61'000);
    }
    auto full = co_await admit(later61, k);
    CHECK(full.r.key.reason == LimitReason::rpm);
    CO_CHECK_EQ(co_await zcard(*f.client, kname("slide", "rpm")), 5);  // the old ones were dropped
  };
  f.run(body);
}

TEST_CASE("limiter: rpd counts per UTC day") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    // 5 s before midnight UTC, and a replica 10 s ahead of it (5 s into the next day).
    const Millis before(ms_to_midnight() - 5'000);
    Limiter eve(f.client, "t:", before, kLongLease);
    Limiter morning(f.client, "t:", before + Millis(10'000), kLongLease);
    core::KeyLimits l;
    l.rpd = 3;
    const auto k = key_of("daily", l);

    std::int64_t day = 0;
    for (int i = 1; i <= 3; ++i) {
      auto a = co_await admit(eve, k);
      REQUIRE(a.r.key.admitted);
      day = a.r.at_ms / kDayMs;
      CHECK(a.r.key.headers.limit_requests == 3);  // no rpm: the request headers are rpd's
      CHECK(a.r.key.headers.remaining_requests == 3 - i);
      REQUIRE(a.r.key.headers.reset_requests);
      CHECK(a.r.key.headers.reset_requests->count() > 3'000);
      CHECK(a.r.key.headers.reset_requests->count() <= 5'000);
    }
    auto refused = co_await admit(eve, k);
    CHECK(!refused.r.key.admitted);
    CHECK(refused.r.key.reason == LimitReason::rpd);
    CHECK(!core::is_quota(refused.r.key.reason));
    REQUIRE(refused.r.key.retry_after);
    CHECK(refused.r.key.retry_after->count() > 3'000);  // until midnight
    CHECK(refused.r.key.retry_after->count() <= 5'000);
    CHECK(refused.r.key.retry_after->count() == (day + 1) * kDayMs - refused.r.at_ms);
    CHECK(refused.r.key.headers.remaining_requests == 0);
    CO_CHECK_EQ(co_await hget(c, kname("daily", "rpd"), std::to_string(day)), 3);

    // After midnight a new day starts from zero.
    for (int i = 1; i <= 3; ++i) {
      auto a = co_await admit(morning, k);
      REQUIRE(a.r.key.admitted);
      CHECK(a.r.at_ms / kDayMs == day + 1);
      CHECK(a.r.key.headers.remaining_requests == 3 - i);
    }
    auto next = co_await admit(morning, k);
    CHECK(next.r.key.reason == LimitReason::rpd);
    REQUIRE(next.r.key.retry_after);
    CHECK(next.r.key.retry_after->count() > kDayMs - 6'000);
    CO_CHECK_EQ(co_await hget(c, kname("daily", "rpd"), std::to_string(day + 1)), 3);
    CO_CHECK_EQ(co_await hget(c, kname("daily", "rpd"), std::to_string(day)), -1);  // the old day is dropped
    // The day's hash outlives the day by an hour, no more.
    auto ttl = co_await cmd(c, "PTTL", kname("daily", "rpd"));
    REQUIRE(ttl);
    CHECK(ttl->integer > kDayMs);
    CHECK(ttl->integer <= kDayMs + 3'600'000);
  };
  f.run(body);
}

TEST_CASE("limiter: rpd holds with a clock offset in the past") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    // LIMIT_CLOCK_OFFSET_MS may be negative: the limiter's day then ended in Redis's real time long
    // ago. The counters must still expire relative to the limiter's clock, not be deleted at once.
    Limiter past(f.client, "t:", noon_offset() - Millis(2 * kDayMs), kLongLease);
    core::KeyLimits l;
    l.rpd = 2;
    const auto k = key_of("past", l);
    for (int i = 0; i < 2; ++i) {
      auto a = co_await admit(past, k);
      CHECK(a.r.key.admitted);
    }
    auto refused = co_await admit(past, k);
    CHECK(refused.r.key.reason == LimitReason::rpd);
    auto ttl = co_await cmd(c, "PTTL", kname("past", "rpd"));
    REQUIRE(ttl);
    CHECK(ttl->integer > kDayMs / 2);

    std::vector<ProviderCandidate> cands{provider_of("old", std::nullopt, 1)};
    auto p1 = co_await admit_providers(past, cands);
    CHECK(p1.r.provider == 0u);
    auto p2 = co_await admit_providers(past, cands);
    CHECK(!p2.r.provider);
    REQUIRE(p2.r.provider_retry);
    CHECK(p2.r.provider_retry->count() > kDayMs / 2 - 10'000);
  };
  f.run(body);
}

TEST_CASE("limiter: tpm counts estimates at admission and corrects them at reconcile") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);
    Limiter later(f.client, "t:", Millis(61'000), kLongLease);
    core::KeyLimits l;
    l.tpm = 100;
    const auto k = key_of("tok", l, 40);

    // 0, 40, 80 are under 100: admitted. 120 is not.
    std::vector<Admitted> ok;
    for (int i = 1; i <= 3; ++i) {
      auto a = co_await admit(lim, k);
      REQUIRE(a.r.key.admitted);
      CHECK(a.r.key.headers.limit_tokens == 100);
      CHECK(a.r.key.headers.remaining_tokens == 100 - 40 * i);
      REQUIRE(a.r.key.headers.reset_tokens);
      CHECK(a.r.key.headers.reset_tokens->count() > 59'000);
      CHECK(a.r.key.headers.reset_tokens->count() <= 61'000);
      CHECK(!a.r.key.headers.limit_requests);
      ok.push_back(std::move(a));
    }
    // The estimate is counted in the admission's second.
    const auto first_second = co_await hget(c, kname("tok", "tok"), std::to_string(ok[0].r.at_ms / 1000));
    CHECK(first_second >= 40);
    CO_CHECK_EQ(co_await tok_sum(c, "tok"), 120);

    auto refused = co_await admit(lim, k);
    CHECK(!refused.r.key.admitted);
    CHECK(refused.r.key.reason == LimitReason::tpm);
    CHECK(!core::is_quota(refused.r.key.reason));
    REQUIRE(refused.r.key.retry_after);
    CHECK(refused.r.key.retry_after->count() > 59'000);
    CHECK(refused.r.key.retry_after->count() <= 61'000);
    CHECK(refused.r.key.headers.limit_tokens == 100);
    CHECK(refused.r.key.headers.remaining_tokens == -20);  // raw; the header says 0
    std::vector<std::pair<std::string, std::string>> h;
    refused.r.key.headers.append_to(h);
    REQUIRE(h.size() == 3);
    CHECK(h[1] == std::pair<std::string, std::string>{"x-ratelimit-remaining-tokens", "0"});
    CO_CHECK_EQ(co_await tok_sum(c, "tok"), 120);  // a refusal adds nothing

    // The real usage (5 tokens each) replaces the estimates: 15 in the minute.
    for (const auto& a : ok) CHECK(lim.reconcile(k, a.id, a.r.at_ms, 5, 0));
    co_await sync(c);
    CO_CHECK_EQ(co_await tok_sum(c, "tok"), 15);
    auto back = co_await admit(lim, k);
    CHECK(back.r.key.admitted);
    CHECK(back.r.key.headers.remaining_tokens == 100 - 55);

    // More than estimated counts too: 55 + (90 - 40) = 105.
    CHECK(lim.reconcile(k, back.id, back.r.at_ms, 90, 0));
    co_await sync(c);
    CO_CHECK_EQ(co_await tok_sum(c, "tok"), 105);
    auto over = co_await admit(lim, k);
    CHECK(over.r.key.reason == LimitReason::tpm);

    // A minute later the buckets have left the window.
    auto fresh = co_await admit(later, k);
    CHECK(fresh.r.key.admitted);
    CHECK(fresh.r.key.headers.remaining_tokens == 60);
    CO_CHECK_EQ(co_await tok_sum(c, "tok"), 40);
    // A reconcile of an admission whose second left the window changes nothing.
    CHECK(later.reconcile(k, ok[0].id, ok[0].r.at_ms, 0, 0));
    co_await sync(c);
    CO_CHECK_EQ(co_await tok_sum(c, "tok"), 40);
  };
  f.run(body);
}

TEST_CASE("limiter: max_parallel counts leases; reconcile, lease expiry and renew") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    core::KeyLimits l;
    l.max_parallel = 3;

    {  // reconcile frees a slot
      Limiter lim(f.client, "t:", Millis(0), kLongLease);
      const auto k = key_of("par", l);
      std::vector<Admitted> running;
      for (int i = 0; i < 3; ++i) {
        auto a = co_await admit(lim, k);
        REQUIRE(a.r.key.admitted);
        CHECK(a.r.key.headers.empty());  // max_parallel has no header
        running.push_back(std::move(a));
      }
      auto refused = co_await admit(lim, k);
      CHECK(!refused.r.key.admitted);
      CHECK(refused.r.key.reason == LimitReason::parallel);
      CHECK(!core::is_quota(refused.r.key.reason));
      CHECK(refused.r.key.retry_after == Millis(1'000));  // the lease is long: try again in a second
      CO_CHECK_EQ(co_await zcard(c, kname("par", "par")), 3);

      CHECK(lim.reconcile(k, running[1].id, running[1].r.at_ms, 0, 0));
      co_await sync(c);
      CO_CHECK_EQ(co_await zcard(c, kname("par", "par")), 2);
      auto back = co_await admit(lim, k);
      CHECK(back.r.key.admitted);
      auto full = co_await admit(lim, k);
      CHECK(full.r.key.reason == LimitReason::parallel);
      // Reconciling twice frees nothing more.
      CHECK(lim.reconcile(k, running[1].id, running[1].r.at_ms, 0, 0));
      co_await sync(c);
      CO_CHECK_EQ(co_await zcard(c, kname("par", "par")), 3);
    }

    {  // the slots of a dead replica expire with their lease
      Limiter lim(f.client, "t:", Millis(0), Millis(300));
      const auto k = key_of("par-lease", l);
      for (int i = 0; i < 3; ++i) {
        auto a = co_await admit(lim, k);
        REQUIRE(a.r.key.admitted);
      }
      auto refused = co_await admit(lim, k);
      CHECK(refused.r.key.reason == LimitReason::parallel);
      REQUIRE(refused.r.key.retry_after);
      CHECK(refused.r.key.retry_after->count() > 0);
      CHECK(refused.r.key.retry_after->count() <= 300);  // when the first lease ends
      co_await sleep(450ms);
      auto back = co_await admit(lim, k);
      CHECK(back.r.key.admitted);
      CO_CHECK_EQ(co_await zcard(c, kname("par-lease", "par")), 1);
    }

    {  // renew keeps running requests' slots and reservations
      const Millis lease(400);
      Limiter lim(f.client, "t:", Millis(0), lease);
      const auto k = key_of("par-renew", l);
      core::KeyLimits bl;
      bl.token_budget = 100;
      const auto kb = key_of("budget-renew", bl, 50);
      std::vector<std::string> ids, budget_ids;
      for (int i = 0; i < 3; ++i) {
        auto a = co_await admit(lim, k);
        REQUIRE(a.r.key.admitted);
        ids.push_back(a.id);
      }
      for (int i = 0; i < 2; ++i) {
        auto a = co_await admit(lim, kb);
        REQUIRE(a.r.key.admitted);
        CHECK(a.r.key.reserved_tokens == 50);
        budget_ids.push_back(a.id);
      }
      // Renewed every 100 ms for twice the lease: still held.
      for (int i = 0; i < 8; ++i) {
        co_await sleep(100ms);
        CHECK(lim.renew("par-renew", ids));
        CHECK(lim.renew("budget-renew", budget_ids));
      }
      co_await sync(c);
      auto held = co_await admit(lim, k);
      CHECK(held.r.key.reason == LimitReason::parallel);
      auto held_budget = co_await admit(lim, kb);
      CHECK(held_budget.r.key.reason == LimitReason::token_budget);
      const std::vector<std::string> nothing;
      CHECK(lim.renew("par-renew", nothing));  // nothing to renew: nothing sent, still true

      // No longer renewed: freed when the lease ends.
      co_await sleep(650ms);
      auto freed = co_await admit(lim, k);
      CHECK(freed.r.key.admitted);
      CO_CHECK_EQ(co_await zcard(c, kname("par-renew", "par")), 1);
      auto freed_budget = co_await admit(lim, kb);
      CHECK(freed_budget.r.key.admitted);
      CHECK(freed_budget.r.key.reserved_tokens == 50);
      CO_CHECK_EQ(co_await reservations(c, "budget-renew"), 1);
      // Renewing a request already reconciled does not bring its slot back.
      CHECK(lim.reconcile(k, freed.id, freed.r.at_ms, 0, 0));
      std::vector<std::string> gone{freed.id};
      CHECK(lim.renew("par-renew", gone));
      co_await sync(c);
      CO_CHECK_EQ(co_await zcard(c, kname("par-renew", "par")), 0);
    }
  };
  f.run(body);
}

TEST_CASE("limiter: a token budget is spent by reconciled usage and never refills") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);
    Limiter later(f.client, "t:", Millis(2 * kDayMs), kLongLease);
    core::KeyLimits l;
    l.token_budget = 30;
    const auto k = key_of("budget", l, 20);

    auto a1 = co_await admit(lim, k);
    REQUIRE(a1.r.key.admitted);
    CHECK(a1.r.key.reserved_tokens == 20);
    CHECK(a1.r.key.headers.budget_tokens_left == 10);
    CHECK(!a1.r.key.headers.budget_micro_usd_left);
    CHECK(!a1.r.key.headers.limit_requests);
    CHECK(a1.r.used.tokens == 0);
    CHECK(lim.reconcile(k, a1.id, a1.r.at_ms, 18, 0));
    co_await sync(c);
    CO_CHECK_EQ(co_await hget(c, kname("budget", "used"), "t"), 18);
    CO_CHECK_EQ(co_await reservations(c, "budget"), 0);

    auto a2 = co_await admit(lim, k);
    REQUIRE(a2.r.key.admitted);
    CHECK(a2.r.used.tokens == 18);
    CHECK(a2.r.key.reserved_tokens == 12);  // what is left, not the whole estimate
    CHECK(a2.r.key.headers.budget_tokens_left == 0);
    CHECK(lim.reconcile(k, a2.id, a2.r.at_ms, 18, 0));
    co_await sync(c);
    CO_CHECK_EQ(co_await hget(c, kname("budget", "used"), "t"), 36);

    auto refused = co_await admit(lim, k);
    CHECK(!refused.r.key.admitted);
    CHECK(refused.r.key.reason == LimitReason::token_budget);
    CHECK(core::is_quota(refused.r.key.reason));
    CHECK(!refused.r.key.retry_after);  // budgets do not refill
    CHECK(refused.r.key.reserved_tokens == 0);
    CHECK(refused.r.key.headers.budget_tokens_left == -6);
    CHECK(refused.r.used.tokens == 36);
    std::vector<std::pair<std::string, std::string>> h;
    refused.r.key.headers.append_to(h);
    REQUIRE(h.size() == 1);
    CHECK(h[0] == std::pair<std::string, std::string>{"x-llm-budget-remaining-tokens", "0"});
    // Not even days later.
    auto days = co_await admit(later, k);
    CHECK(days.r.key.reason == LimitReason::token_budget);
    CO_CHECK_EQ(co_await reservations(c, "budget"), 0);
  };
  f.run(body);
}

TEST_CASE("limiter: concurrent admissions reserve a budget exactly; the overrun is bounded") {
  Fixture f;
  f.make_client(patient(f));
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    SecondClient second(f, patient(f));
    CO_REQUIRE(co_await second.client->wait_connected(2s));
    Limiter a(f.client, "t:", Millis(0), kLongLease), b(second.client, "t:", Millis(0), kLongLease);
    std::vector<Limiter*> both{&a, &b};
    core::KeyLimits l;
    l.token_budget = 1000;

    {  // usage within the reservations never exceeds the budget
      const auto k = key_of("shared-budget", l, 100);
      auto first = co_await burst(both, k, 200);
      CHECK(first.errors == 0);
      REQUIRE(first.admitted.size() == 10);  // 10 x 100 reserved
      for (const auto& x : first.admitted) CHECK(x.r.key.reserved_tokens == 100);
      for (const auto& r : first.refused) CHECK(r.reason == LimitReason::token_budget);
      CO_CHECK_EQ(co_await reservations(c, "shared-budget"), 10);

      for (const auto& x : first.admitted) CHECK(a.reconcile(k, x.id, x.r.at_ms, 90, 0));
      co_await sync(c);
      CO_CHECK_EQ(co_await hget(c, kname("shared-budget", "used"), "t"), 900);
      CO_CHECK_EQ(co_await reservations(c, "shared-budget"), 0);

      // 100 left: one more request, reserving all of it.
      auto second_burst = co_await burst(both, k, 200);
      CHECK(second_burst.errors == 0);
      REQUIRE(second_burst.admitted.size() == 1);
      const auto& last = second_burst.admitted.front();
      CHECK(last.r.key.reserved_tokens == 100);
      CHECK(last.r.key.headers.budget_tokens_left == 0);
      CHECK(last.r.used.tokens == 900);
      CHECK(b.reconcile(k, last.id, last.r.at_ms, 100, 0));
      co_await sync(*second.client);
      CO_CHECK_EQ(co_await hget(c, kname("shared-budget", "used"), "t"), 1000);  // exactly the budget

      auto spent = co_await burst(both, k, 20);
      CHECK(spent.admitted.empty());
      CHECK(spent.refused.size() == 20);
    }

    {  // a request using more than it reserved overruns by its excess only
      const auto k = key_of("overrun", l, 150);
      auto out = co_await burst(both, k, 200);
      CHECK(out.errors == 0);
      REQUIRE(out.admitted.size() == 7);  // 6 x 150, then the last 100
      std::int64_t reserved = 0, excess = 0;
      for (const auto& x : out.admitted) {
        reserved += x.r.key.reserved_tokens;
        excess += 150 - x.r.key.reserved_tokens;
      }
      CHECK(reserved == 1000);
      CHECK(excess == 50);
      for (const auto& x : out.admitted) CHECK(a.reconcile(k, x.id, x.r.at_ms, 150, 0));
      co_await sync(c);
      const auto used = co_await hget(c, kname("overrun", "used"), "t");
      CHECK(used == 1050);
      CHECK(used - 1000 <= excess);
      auto after = co_await admit(a, k);
      CHECK(after.r.key.reason == LimitReason::token_budget);
      CHECK(after.r.key.headers.budget_tokens_left == -50);
    }
  };
  f.run(body);
}

TEST_CASE("limiter: budget_usd in micro-USD") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);
    core::KeyLimits l;
    l.budget_usd = 0.01;  // 10,000 micro-USD
    const auto k = key_of("usd", l, 100, 4'000);

    std::vector<Admitted> ok;
    const std::int64_t reserved[] = {4'000, 4'000, 2'000};
    const std::int64_t left[] = {6'000, 2'000, 0};
    for (int i = 0; i < 3; ++i) {
      auto a = co_await admit(lim, k);
      REQUIRE(a.r.key.admitted);
      CHECK(a.r.key.reserved_micro_usd == reserved[i]);
      CHECK(a.r.key.reserved_tokens == 0);  // no token budget: tokens are not reserved
      CHECK(a.r.key.headers.budget_micro_usd_left == left[i]);
      CHECK(!a.r.key.headers.budget_tokens_left);
      ok.push_back(std::move(a));
    }
    auto refused = co_await admit(lim, k);
    CHECK(!refused.r.key.admitted);
    CHECK(refused.r.key.reason == LimitReason::budget_usd);
    CHECK(core::is_quota(refused.r.key.reason));
    CHECK(!refused.r.key.retry_after);
    CHECK(refused.r.key.headers.budget_micro_usd_left == 0);
    std::vector<std::pair<std::string, std::string>> h;
    refused.r.key.headers.append_to(h);
    REQUIRE(h.size() == 1);
    CHECK(h[0] == std::pair<std::string, std::string>{"x-llm-budget-remaining-usd", "0.000000"});

    // Each cost 1,000 micro-USD (and 70 tokens: counted as used, though no token budget applies).
    for (const auto& a : ok) CHECK(lim.reconcile(k, a.id, a.r.at_ms, 70, 1'000));
    co_await sync(c);
    CO_CHECK_EQ(co_await hget(c, kname("usd", "used"), "m"), 3'000);
    CO_CHECK_EQ(co_await hget(c, kname("usd", "used"), "t"), 210);
    auto again = co_await admit(lim, k);
    CHECK(again.r.key.admitted);
    CHECK(again.r.used.micro_usd == 3'000);
    CHECK(again.r.key.reserved_micro_usd == 4'000);
    CHECK(again.r.key.headers.budget_micro_usd_left == 3'000);
    h.clear();
    again.r.key.headers.append_to(h);
    REQUIRE(h.size() == 1);
    CHECK(h[0].second == "0.003000");
  };
  f.run(body);
}

// The scripts keep running totals (the tpm window's sum, the reservations' totals) and drop what
// leaves a window once. Random admissions, reconciles and releases, with the clock moving through
// several windows, must give the answers a plain model computes by summing everything each time.
TEST_CASE("limiter: running totals give the answers of summing everything, in any order") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    core::KeyLimits l;
    l.tpm = 1'000'000'000;
    l.token_budget = 1'000'000'000;
    l.max_parallel = 1'000'000;
    constexpr std::int64_t kTpm = 1'000'000'000, kBudget = 1'000'000'000;
    const Millis lease = std::chrono::hours(1);  // no lease ends here: "expire with the lease" tests that
    {
      // Load every script first: the first reconcile of a fresh Redis would run after the next
      // admission (NOSCRIPT, then again by text), and the model counts in order.
      Limiter warm(f.client, "t:", Millis(0), lease);
      const auto k = key_of("warm", l, 1);
      auto a = co_await admit(warm, k);
      CHECK(warm.reconcile(k, a.id, a.r.at_ms, 1, 0));
      CHECK(warm.release(k, a.id, a.r.at_ms));
      co_await sync(c);
      auto reset = co_await cmd(c, "CONFIG", "RESETSTAT");
      REQUIRE(reset);
    }

    struct Running {
      std::string id;
      std::int64_t at_ms, est, offset;
    };
    std::map<std::int64_t, std::int64_t> buckets;  // second -> tokens, as the model counts them
    std::map<std::string, std::int64_t> reserved;  // admission id -> tokens
    std::int64_t used = 0;
    std::vector<Running> running;
    std::int64_t whole_hash_reads = 0;
    std::mt19937 rng(20261125);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    auto sum_of = [](const auto& m) {
      std::int64_t s = 0;
      for (const auto& [k, v] : m) s += v;
      return s;
    };
    // A bucket changed as the scripts change it: gone at 0 or below.
    auto add = [&](std::int64_t sec, std::int64_t delta) {
      if ((buckets[sec] += delta) <= 0) buckets.erase(sec);
    };

    // Phases at these clock offsets (limiters whose clocks are ahead), in seconds: 7 s apart, then
    // 59 and 60 s after an earlier phase (its second is the window's last, then gone), then a jump
    // past every window.
    const std::vector<std::int64_t> offsets{0,  7,  14, 21, 28,  35,  42,  49,  56,
                                            59, 60, 61, 66, 119, 120, 121, 330, 333};
    for (std::size_t phase = 0; phase < offsets.size(); ++phase) {
      const std::int64_t offset = offsets[phase] * 1000;
      Limiter lim(f.client, "t:", Millis(offset), lease);
      for (int step = 0; step < 40; ++step) {
        const int op = pick(10);
        // Only requests at most 10 s old end here: their second is still in the window, as it is
        // for any request that ends within 45 s.
        std::vector<std::size_t> recent;
        for (std::size_t i = 0; i < running.size(); ++i)
          if (running[i].offset >= offset - 10'000) recent.push_back(i);
        if (op < 6 || recent.empty()) {
          const std::int64_t est = pick(4) == 0 ? 0 : 1 + pick(500);
          const auto k = key_of("prop", l, est);
          auto a = co_await admit(lim, k);
          REQUIRE(a.r.key.admitted);
          const std::int64_t sec = a.r.at_ms / 1000;
          std::erase_if(buckets, [&](const auto& b) { return b.first < sec - 59; });
          const auto before = sum_of(buckets);
          if (est > 0) add(sec, est);
          const auto remaining = kTpm - before - est;
          CHECK(a.r.key.headers.remaining_tokens.value_or(-1) == remaining);
          REQUIRE(a.r.key.headers.reset_tokens);
          if (buckets.empty())
            CHECK(a.r.key.headers.reset_tokens->count() == 0);
          else
            CHECK(a.r.key.headers.reset_tokens->count() == (buckets.begin()->first + 60) * 1000 - a.r.at_ms);
          CHECK(a.r.key.reserved_tokens == est);
          const auto budget_left = kBudget - used - sum_of(reserved) - est;
          CHECK(a.r.key.headers.budget_tokens_left.value_or(-1) == budget_left);
          reserved[a.id] = est;
          running.push_back({a.id, a.r.at_ms, est, offset});
        } else {
          const auto at = recent[static_cast<std::size_t>(pick(static_cast<int>(recent.size())))];
          const Running r = running[at];
          running.erase(running.begin() + static_cast<std::ptrdiff_t>(at));
          const auto k = key_of("prop", l, r.est);
          if (op < 9) {
            const std::int64_t tokens = pick(700);
            CHECK(lim.reconcile(k, r.id, r.at_ms, tokens, 0));
            if (tokens != r.est) add(r.at_ms / 1000, tokens - r.est);
            used += tokens;
          } else {
            CHECK(lim.release(k, r.id, r.at_ms));
            if (r.est > 0 && buckets.contains(r.at_ms / 1000)) add(r.at_ms / 1000, -r.est);
          }
          reserved.erase(r.id);
        }
      }
      co_await sync(c);
      whole_hash_reads += co_await hgetall_calls(c);  // before the checks, which make some
      CO_CHECK_EQ(co_await reservations(c, "prop"), static_cast<std::int64_t>(reserved.size()));
      CO_CHECK_EQ(co_await zcard(c, kname("prop", "par")), static_cast<std::int64_t>(running.size()));
      co_await tok_sum(c, "prop");  // checks the running sum against the buckets
      CO_CHECK_EQ(co_await hget(c, kname("prop", "used"), "t"), used == 0 ? -1 : used);
      auto reset = co_await cmd(c, "CONFIG", "RESETSTAT");
      REQUIRE(reset);
    }
    // Admissions read no whole hash, except the first (no window yet) and the one after the jump.
    // (Before the running totals, every admission read two: every tpm bucket, every reservation.)
    CHECK(whole_hash_reads == 2);
  };
  f.run(body);
}

TEST_CASE("limiter: reservations not reconciled expire with the lease") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), Millis(300));
    core::KeyLimits l;
    l.token_budget = 100;
    const auto k = key_of("res", l, 60);
    auto a1 = co_await admit(lim, k);
    CHECK(a1.r.key.reserved_tokens == 60);
    auto a2 = co_await admit(lim, k);
    CHECK(a2.r.key.reserved_tokens == 40);
    CHECK(a2.r.key.headers.budget_tokens_left == 0);
    auto refused = co_await admit(lim, k);
    CHECK(refused.r.key.reason == LimitReason::token_budget);
    CHECK(!refused.r.key.retry_after);

    // The replica that made them died: after the lease they no longer count.
    core::KeyLimits ul;
    ul.budget_usd = 0.0001;  // 100 micro-USD
    const auto ku = key_of("res-usd", ul, 0, 100);
    auto u1 = co_await admit(lim, ku);
    CHECK(u1.r.key.reserved_micro_usd == 100);
    auto u2 = co_await admit(lim, ku);
    CHECK(u2.r.key.reason == LimitReason::budget_usd);

    co_await sleep(450ms);
    auto back = co_await admit(lim, k);
    CHECK(back.r.key.admitted);
    CHECK(back.r.key.reserved_tokens == 60);
    CHECK(back.r.key.headers.budget_tokens_left == 40);
    CO_CHECK_EQ(co_await reservations(c, "res"), 1);  // the expired ones were dropped
    auto back_usd = co_await admit(lim, ku);
    CHECK(back_usd.r.key.admitted);
    CHECK(back_usd.r.key.reserved_micro_usd == 100);
    // Nothing was used.
    CO_CHECK_EQ(co_await hget(c, kname("res", "used"), "t"), -1);
  };
  f.run(body);
}

TEST_CASE("limiter: provider admission picks the first candidate with quota") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", noon_offset(), kLongLease);
    const auto p1 = provider_of("p1", std::nullopt, 3);
    const auto p2 = provider_of("p2", std::nullopt, 3);
    const auto p3 = provider_of("p3", std::nullopt, std::nullopt);  // no limits
    std::vector<ProviderCandidate> cands{p1, p2};

    std::int64_t day = 0;
    std::vector<Admitted> on_p1;
    for (int i = 0; i < 3; ++i) {
      auto a = co_await admit_providers(lim, cands);
      CHECK(a.r.provider == 0u);
      CHECK(!a.r.provider_retry);
      CHECK(a.r.key.admitted);  // no key: admitted, no headers
      CHECK(a.r.key.headers.empty());
      day = a.r.at_ms / kDayMs;
      on_p1.push_back(std::move(a));
    }
    for (int i = 0; i < 3; ++i) {
      auto a = co_await admit_providers(lim, cands);
      CHECK(a.r.provider == 1u);
    }
    auto none = co_await admit_providers(lim, cands);
    CHECK(!none.r.provider);
    REQUIRE(none.r.provider_retry);
    CHECK(none.r.provider_retry->count() == (day + 1) * kDayMs - none.r.at_ms);  // midnight
    CHECK(none.r.provider_retry->count() > kDayMs / 2 - 10'000);
    CHECK(none.r.provider_retry->count() <= kDayMs / 2);
    CO_CHECK_EQ(co_await hget(c, pname("p1", "rpd"), std::to_string(day)), 3);
    CO_CHECK_EQ(co_await hget(c, pname("p2", "rpd"), std::to_string(day)), 3);

    // An unlimited candidate after limited ones at their limit: taken, and not counted anywhere.
    std::vector<ProviderCandidate> with_free{p1, p3};
    auto free = co_await admit_providers(lim, with_free);
    CHECK(free.r.provider == 1u);
    CHECK(!free.r.provider_retry);
    // An unlimited candidate first: taken without asking Redis (p1 is not counted).
    std::vector<ProviderCandidate> free_first{p3, p1};
    auto first = co_await admit_providers(lim, free_first);
    CHECK(first.r.provider == 0u);
    CO_CHECK_EQ(co_await hget(c, pname("p1", "rpd"), std::to_string(day)), 3);
    auto keys = co_await all_keys(c);
    const std::vector<std::string> expected{pname("p1", "rpd"), pname("p2", "rpd")};
    CHECK(keys == expected);  // nothing for p3, no rpm set for rpd-only providers

    // release() undoes a provider's count.
    CHECK(lim.release(p1, on_p1[0].id, on_p1[0].r.at_ms));
    co_await sync(c);
    CO_CHECK_EQ(co_await hget(c, pname("p1", "rpd"), std::to_string(day)), 2);
    auto freed = co_await admit_providers(lim, cands);
    CHECK(freed.r.provider == 0u);
  };
  f.run(body);
}

TEST_CASE("limiter: provider rpm, and the earliest retry among candidates") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", noon_offset(), kLongLease);
    Limiter later(f.client, "t:", noon_offset() + Millis(61'000), kLongLease);
    const auto fast = provider_of("fast", 2, std::nullopt);
    const auto daily = provider_of("daily", std::nullopt, 1);
    std::vector<ProviderCandidate> only_fast{fast};
    std::vector<Admitted> ok;
    for (int i = 0; i < 2; ++i) {
      auto a = co_await admit_providers(lim, only_fast);
      CHECK(a.r.provider == 0u);
      ok.push_back(std::move(a));
    }
    auto none = co_await admit_providers(lim, only_fast);
    CHECK(!none.r.provider);
    REQUIRE(none.r.provider_retry);
    CHECK(none.r.provider_retry->count() > 59'000);
    CHECK(none.r.provider_retry->count() <= 60'000);
    CO_CHECK_EQ(co_await zcard(c, pname("fast", "rpm")), 2);

    // Both at their limits: the retry is the earliest (rpm's minute, not rpd's midnight).
    std::vector<ProviderCandidate> daily_only{daily};
    auto d = co_await admit_providers(lim, daily_only);
    CHECK(d.r.provider == 0u);
    std::vector<ProviderCandidate> both{daily, fast};
    auto neither = co_await admit_providers(lim, both);
    CHECK(!neither.r.provider);
    REQUIRE(neither.r.provider_retry);
    CHECK(neither.r.provider_retry->count() > 59'000);
    CHECK(neither.r.provider_retry->count() <= 60'000);

    // release() takes the request out of the minute.
    CHECK(lim.release(fast, ok[1].id, ok[1].r.at_ms));
    co_await sync(c);
    CO_CHECK_EQ(co_await zcard(c, pname("fast", "rpm")), 1);
    auto freed = co_await admit_providers(lim, both);
    CHECK(freed.r.provider == 1u);

    // A minute later the provider has its quota again.
    auto next_minute = co_await admit_providers(later, only_fast);
    CHECK(next_minute.r.provider == 0u);
  };
  f.run(body);
}

TEST_CASE("limiter: key and providers in one admission; release undoes both") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", noon_offset(), kLongLease);
    core::KeyLimits l;
    l.rpm = 2;
    l.rpd = 5;
    l.tpm = 1000;
    l.max_parallel = 1;
    l.token_budget = 10'000;
    l.budget_usd = 1.0;
    const auto k = key_of("all", l, 50, 500);
    const auto p = provider_of("pp", 10, 10);
    std::vector<ProviderCandidate> cands{p};

    std::string id = next_id();
    auto r = co_await lim.admit(&k, cands, id);
    REQUIRE(r);
    REQUIRE(r->key.admitted);
    CHECK(r->provider == 0u);
    CHECK(r->key.headers.limit_requests == 2);  // rpm's, not rpd's
    CHECK(r->key.headers.remaining_requests == 1);
    CHECK(r->key.headers.limit_tokens == 1000);
    CHECK(r->key.headers.remaining_tokens == 950);
    CHECK(r->key.headers.budget_tokens_left == 9'950);
    CHECK(r->key.headers.budget_micro_usd_left == 999'500);
    CHECK(r->key.reserved_tokens == 50);
    CHECK(r->key.reserved_micro_usd == 500);
    const auto day = std::to_string(r->at_ms / kDayMs);
    // at_ms is the key's admission time: its tpm estimate is in that second.
    CO_CHECK_EQ(co_await hget(c, kname("all", "tok"), std::to_string(r->at_ms / 1000)), 50);
    CO_CHECK_EQ(co_await zcard(c, kname("all", "rpm")), 1);
    CO_CHECK_EQ(co_await hget(c, kname("all", "rpd"), day), 1);
    CO_CHECK_EQ(co_await zcard(c, kname("all", "par")), 1);
    CO_CHECK_EQ(co_await reservations(c, "all"), 1);
    CO_CHECK_EQ(co_await zcard(c, pname("pp", "rpm")), 1);
    CO_CHECK_EQ(co_await hget(c, pname("pp", "rpd"), day), 1);

    // No route took it: everything is undone.
    CHECK(lim.release(k, id, r->at_ms));
    CHECK(lim.release(p, id, r->at_ms));
    co_await sync(c);
    CO_CHECK_EQ(co_await zcard(c, kname("all", "rpm")), 0);
    CO_CHECK_EQ(co_await hget(c, kname("all", "rpd"), day), 0);
    CO_CHECK_EQ(co_await tok_sum(c, "all"), 0);
    CO_CHECK_EQ(co_await zcard(c, kname("all", "par")), 0);
    CO_CHECK_EQ(co_await reservations(c, "all"), 0);
    CO_CHECK_EQ(co_await zcard(c, pname("pp", "rpm")), 0);
    CO_CHECK_EQ(co_await hget(c, pname("pp", "rpd"), day), 0);
    CO_CHECK_EQ(co_await hget(c, kname("all", "used"), "t"), -1);  // a release uses nothing
    // Releasing again does not go below zero.
    CHECK(lim.release(k, id, r->at_ms));
    CHECK(lim.release(p, id, r->at_ms));
    co_await sync(c);
    CO_CHECK_EQ(co_await hget(c, kname("all", "rpd"), day), 0);
    CO_CHECK_EQ(co_await hget(c, pname("pp", "rpd"), day), 0);

    // The whole quota is there again.
    auto a1 = co_await admit(lim, k);
    CHECK(a1.r.key.admitted);
    CHECK(a1.r.key.headers.remaining_requests == 1);
    CHECK(a1.r.key.headers.remaining_tokens == 950);
    // A key refused (max_parallel) while the provider was counted in the same round trip: the
    // caller releases the provider.
    std::string id2 = next_id();
    auto r2 = co_await lim.admit(&k, cands, id2);
    REQUIRE(r2);
    CHECK(r2->key.reason == LimitReason::parallel);
    CHECK(r2->provider == 0u);
    CO_CHECK_EQ(co_await zcard(c, pname("pp", "rpm")), 1);
    CHECK(lim.release(p, id2, r2->at_ms));
    co_await sync(c);
    CO_CHECK_EQ(co_await zcard(c, pname("pp", "rpm")), 0);

    // at_ms always matches the key's tpm bucket, also when the provider script runs after it.
    CHECK(lim.reconcile(k, a1.id, a1.r.at_ms, 50, 500));
    bool buckets_match = true;
    core::KeyLimits tl;
    tl.tpm = 1'000'000;
    const auto kt = key_of("at", tl, 1);
    const auto many = provider_of("many", 100'000, std::nullopt);
    std::vector<ProviderCandidate> one{many};
    for (int i = 0; i < 200; ++i) {
      std::string idn = next_id();
      auto rn = co_await lim.admit(&kt, one, idn);
      REQUIRE(rn);
      CHECK(lim.release(kt, idn, rn->at_ms));
      co_await sync(c);
      const auto left = co_await tok_sum(c, "at");
      buckets_match = buckets_match && left == 0;
    }
    CHECK(buckets_match);
  };
  f.run(body);
}

TEST_CASE("limiter: scripts flushed from Redis are sent again by text") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", noon_offset(), kLongLease);
    Limiter ahead(f.client, "t:", noon_offset() + Millis(10'000), kLongLease);
    core::KeyLimits l;
    l.rpm = 10;
    l.max_parallel = 5;
    l.token_budget = 1000;
    const auto k = key_of("ns", l, 10);
    const auto p = provider_of("pns", 10, std::nullopt);
    std::vector<ProviderCandidate> cands{p};

    auto warm = co_await admit(lim, k);  // loads the scripts
    CHECK(warm.r.key.admitted);
    auto flush = co_await cmd(c, "SCRIPT", "FLUSH");
    REQUIRE(flush);
    CHECK(flush->str == "OK");

    std::string id = next_id();
    auto r = co_await lim.admit(&k, cands, id);
    REQUIRE(r);
    CHECK(r->key.admitted);
    CHECK(r->key.headers.remaining_requests == 8);
    CHECK(r->provider == 0u);
    CO_CHECK_EQ(co_await zcard(c, pname("pns", "rpm")), 1);

    // Fire-and-forget scripts: NOSCRIPT, then again by text.
    auto flush2 = co_await cmd(c, "SCRIPT", "FLUSH");
    REQUIRE(flush2);
    CHECK(lim.reconcile(k, warm.id, warm.r.at_ms, 7, 0));
    co_await sync(c);
    CO_CHECK_EQ(co_await hget(c, kname("ns", "used"), "t"), 7);
    CO_CHECK_EQ(co_await zcard(c, kname("ns", "par")), 1);

    auto flush3 = co_await cmd(c, "SCRIPT", "FLUSH");
    REQUIRE(flush3);
    auto before = co_await cmd(c, "ZSCORE", kname("ns", "par"), id);
    REQUIRE(before);
    std::vector<std::string> ids{id};
    CHECK(ahead.renew("ns", ids));  // 10 s ahead: the lease visibly moves
    co_await sync(c);
    auto after = co_await cmd(c, "ZSCORE", kname("ns", "par"), id);
    REQUIRE(after);
    CHECK(std::stoll(after->str) - std::stoll(before->str) >= 10'000);

    auto flush4 = co_await cmd(c, "SCRIPT", "FLUSH");
    REQUIRE(flush4);
    CHECK(lim.release(k, id, r->at_ms));
    CHECK(lim.release(p, id, r->at_ms));
    co_await sync(c);
    CO_CHECK_EQ(co_await zcard(c, kname("ns", "rpm")), 1);  // only warm's
    CO_CHECK_EQ(co_await zcard(c, kname("ns", "par")), 0);
    CO_CHECK_EQ(co_await zcard(c, pname("pns", "rpm")), 0);
  };
  f.run(body);
}

TEST_CASE("limiter: nothing to count costs no Redis command") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    f.server.stop();
    auto down = [&] { return !c.connected(); };
    CO_REQUIRE(co_await eventually(down));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);

    std::vector<ProviderCandidate> none;
    auto r = co_await lim.admit(nullptr, none, next_id());
    REQUIRE(r);
    CHECK(r->key.admitted);
    CHECK(r->key.headers.empty());
    CHECK(!r->provider);
    CHECK(!r->provider_retry);

    const auto unlimited = key_of("free", core::KeyLimits{}, 100, 100);
    std::vector<ProviderCandidate> free{provider_of("f1", std::nullopt, std::nullopt),
                                        provider_of("f2", 5, std::nullopt)};
    auto r2 = co_await lim.admit(&unlimited, free, next_id());
    REQUIRE(r2);
    CHECK(r2->key.admitted);
    CHECK(r2->key.headers.empty());
    CHECK(r2->provider == 0u);
    CHECK(r2->at_ms == 0);
  };
  f.run(body);
}

TEST_CASE("limiter: Redis unreachable") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);
    core::KeyLimits l;
    l.rpm = 10;
    l.token_budget = 100;
    const auto k = key_of("down", l, 10);
    const auto p = provider_of("pd", 10, std::nullopt);
    std::vector<ProviderCandidate> cands{p};
    auto warm = co_await admit(lim, k);
    CHECK(warm.r.key.admitted);

    f.server.stop();
    auto down = [&] { return !c.connected(); };
    CO_REQUIRE(co_await eventually(down));
    const auto t0 = Clock::now();
    auto r = co_await lim.admit(&k, cands, next_id());
    const auto took = Clock::now() - t0;
    REQUIRE(!r);
    CHECK(r.error().code == core::errc::cache_unavailable);
    CHECK(took < 100ms);  // not connected: no waiting
    auto po = co_await lim.admit(nullptr, cands, next_id());
    REQUIRE(!po);
    CHECK(po.error().code == core::errc::cache_unavailable);
    CHECK(!lim.reconcile(k, warm.id, warm.r.at_ms, 5, 0));
    CHECK(!lim.release(k, warm.id, warm.r.at_ms));
    CHECK(!lim.release(p, warm.id, warm.r.at_ms));
    std::vector<std::string> ids{warm.id};
    CHECK(!lim.renew("down", ids));
    auto seeded = co_await lim.seed_used("down", 1, 1);
    REQUIRE(!seeded);
    CHECK(seeded.error().code == core::errc::cache_unavailable);
    auto reset = co_await lim.reset_used("down", true);
    REQUIRE(!reset);
    CHECK(reset.error().code == core::errc::cache_unavailable);

    // A new, empty Redis: the scripts load again by text.
    f.server.start();
    CO_REQUIRE(co_await c.wait_connected(5s));
    auto back = co_await admit(lim, k);
    CHECK(back.r.key.admitted);
    CHECK(back.r.key.headers.remaining_requests == 9);

    // A hung Redis: the admission fails at the command deadline.
    f.server.pause();
    const auto t1 = Clock::now();
    auto hung = co_await lim.admit(&k, cands, next_id());
    const auto waited = Clock::now() - t1;
    f.server.resume();
    REQUIRE(!hung);
    CHECK(hung.error().code == core::errc::cache_unavailable);
    CHECK(waited >= 250ms);
    CHECK(waited < 2s);
  };
  f.run(body);
}

TEST_CASE("limiter: seed_used and reset_used") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", Millis(0), kLongLease);

    auto s1 = co_await lim.seed_used("seed", 500, 7'000);
    REQUIRE(s1);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "t"), 500);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "m"), 7'000);
    auto s2 = co_await lim.seed_used("seed", 100, 100);  // Redis's own count is newer
    REQUIRE(s2);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "t"), 500);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "m"), 7'000);
    // Per field: only the missing one is set.
    auto partial = co_await cmd(c, "HSET", kname("half", "used"), "t", "5");
    REQUIRE(partial);
    auto s3 = co_await lim.seed_used("half", 100, 200);
    REQUIRE(s3);
    CO_CHECK_EQ(co_await hget(c, kname("half", "used"), "t"), 5);
    CO_CHECK_EQ(co_await hget(c, kname("half", "used"), "m"), 200);

    // The seeded use counts against the budgets.
    core::KeyLimits l;
    l.token_budget = 1000;
    l.budget_usd = 0.01;
    const auto k = key_of("seed", l, 400, 2'000);
    auto a = co_await admit(lim, k);
    REQUIRE(a.r.key.admitted);
    CHECK(a.r.used.tokens == 500);
    CHECK(a.r.used.micro_usd == 7'000);
    CHECK(a.r.key.reserved_tokens == 400);
    CHECK(a.r.key.headers.budget_tokens_left == 100);
    CHECK(a.r.key.headers.budget_micro_usd_left == 1'000);
    CHECK(lim.reconcile(k, a.id, a.r.at_ms, 600, 2'500));
    co_await sync(c);
    auto spent = co_await admit(lim, k);
    CHECK(spent.r.key.reason == LimitReason::token_budget);
    CHECK(spent.r.used.tokens == 1'100);
    core::KeyLimits ol;
    ol.token_budget = 1000;
    const auto other = key_of("seed", ol, 1);
    CO_CHECK_EQ(co_await reservations(c, "seed"), 0);

    // The budget starts again from an explicit zero (readers must not fall back to PostgreSQL).
    auto reset = co_await lim.reset_used("seed", true);
    REQUIRE(reset);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "t"), 0);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "m"), 0);
    auto after_reset = co_await lim.used("seed");
    REQUIRE(after_reset);
    REQUIRE(after_reset->has_value());
    CHECK((*after_reset)->tokens == 0);
    auto fresh = co_await admit(lim, k);
    REQUIRE(fresh.r.key.admitted);
    CHECK(fresh.r.used.tokens == 0);
    CHECK(fresh.r.used.micro_usd == 0);
    CHECK(fresh.r.key.headers.budget_tokens_left == 600);
    CO_CHECK_EQ(co_await reservations(c, "seed"), 1);
    // A reservation outstanding when the budget is reset goes too.
    auto reset2 = co_await lim.reset_used("seed", true);
    REQUIRE(reset2);
    CO_CHECK_EQ(co_await reservations(c, "seed"), 0);
    auto o = co_await admit(lim, other);
    CHECK(o.r.key.admitted);
    CHECK(o.r.key.headers.budget_tokens_left == 999);
    // A seed does not overwrite the explicit zero of a reset; once the budget is removed (the
    // counters dropped), a seed applies again.
    auto kept = co_await lim.seed_used("seed", 42, 43);
    REQUIRE(kept);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "t"), 0);
    auto dropped = co_await lim.reset_used("seed", false);
    REQUIRE(dropped);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "t"), -1);
    auto s4 = co_await lim.seed_used("seed", 42, 43);
    REQUIRE(s4);
    CO_CHECK_EQ(co_await hget(c, kname("seed", "used"), "t"), 42);
  };
  f.run(body);
}

TEST_CASE("limiter: every key carries its hash tag") {
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    Limiter lim(f.client, "t:", noon_offset(), kLongLease);
    core::KeyLimits l;
    l.rpm = 10;
    l.rpd = 10;
    l.tpm = 1000;
    l.max_parallel = 5;
    l.token_budget = 1000;
    l.budget_usd = 1.0;
    const auto k = key_of("tag", l, 10, 10);
    std::vector<ProviderCandidate> cands{provider_of("pa", 5, 5), provider_of("pb", 5, 5)};
    for (int i = 0; i < 7; ++i) {  // 5 on pa, then pb (counted even when the key is refused)
      std::string id = next_id();
      auto r = co_await lim.admit(&k, cands, id);
      REQUIRE(r);
      CHECK(r->key.admitted == (i < 6));  // the first one is over before the sixth starts
      if (i == 0) CHECK(lim.reconcile(k, id, r->at_ms, 3, 3));
    }
    co_await sync(c);
    auto keys = co_await all_keys(c);
    std::vector<std::string> expected{kname("tag", "par"), kname("tag", "rsv"), kname("tag", "rpd"),
                                      kname("tag", "rpm"), kname("tag", "tok"), kname("tag", "used"),
                                      pname("pa", "rpd"),  pname("pa", "rpm"),  pname("pb", "rpd"),
                                      pname("pb", "rpm")};
    std::sort(expected.begin(), expected.end());
    CHECK(keys == expected);
    for (const auto& key : keys) {
      const bool tagged = key.rfind("t:rl:{k:tag}:", 0) == 0 || key.rfind("t:rl:{providers}:", 0) == 0;
      CHECK(tagged);
    }
    // Every counter expires; only the budget use stays.
    for (const auto& key : keys) {
      if (key == kname("tag", "used")) continue;
      auto ttl = co_await cmd(c, "PTTL", key);
      REQUIRE(ttl);
      INFO(key);
      CHECK(ttl->integer > 0);
    }
  };
  f.run(body);
}
