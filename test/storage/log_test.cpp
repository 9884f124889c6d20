// The request log: LogWriter (batches, the bounded queue, partitions, failures, stop) and LogRepo
// (the admin queries) against a real PostgreSQL (see main.cpp / temp_postgres).
#include <catch2/catch.hpp>

#include "core/model_rewrite.hpp"
#include "storage/db.hpp"
#include "storage/key_repo.hpp"
#include "storage/log_repo.hpp"
#include "storage/log_writer.hpp"
#include "storage/sql.hpp"
#include "test_support.hpp"

#include <fmt/format.h>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include <atomic>
#include <cctype>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using boost::asio::awaitable;
using core::errc;
using namespace std::chrono_literals;
using std::chrono::sys_days;
using SysTime = std::chrono::system_clock::time_point;
using Clock = std::chrono::steady_clock;

constexpr const char* kKeyA = "aaaaaaaa-0000-4000-8000-000000000001";
constexpr const char* kKeyB = "bbbbbbbb-0000-4000-8000-000000000002";
constexpr const char* kKeyC = "cccccccc-0000-4000-8000-000000000003";

// A migrated database with an empty log (the partitions other tests made stay).
std::unique_ptr<storage::Db> log_db() {
  storage::DbOptions o;
  o.url = test::db_url();
  o.threads = 2;
  auto db = std::make_unique<storage::Db>(std::move(o));
  REQUIRE(db->migrate().has_value());
  pqxx::connection conn(test::db_url());
  pqxx::nontransaction tx(conn);
  tx.exec("TRUNCATE request_logs, usage_daily, key_budget_usage");
  return db;
}

storage::LogWriterOptions writer_options(std::chrono::milliseconds flush = 50ms) {
  storage::LogWriterOptions o;
  o.url = test::db_url();
  o.flush_interval = flush;
  return o;
}

std::int64_t us_of(SysTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::int64_t now_us() {
  return us_of(std::chrono::system_clock::now());
}

core::RequestLog log_row(std::string request_id, std::int64_t created_at_us, std::string key_id = kKeyA,
                         std::string model = "gpt-4o", int status = 200) {
  core::RequestLog r;
  r.request_id = std::move(request_id);
  r.key_id = std::move(key_id);
  r.model = std::move(model);
  r.provider = "openai";
  r.upstream_model = r.model + "-2024";
  r.status = status;
  r.prompt_tokens = 10;
  r.completion_tokens = 5;
  r.total_tokens = 15;
  r.latency_ms = 100;
  r.created_at_us = created_at_us;
  return r;
}

long long scalar(const std::string& sql) {
  pqxx::connection conn(test::db_url());
  pqxx::nontransaction tx(conn);
  const auto rows = tx.exec(sql);
  return rows.empty() || rows[0][0].is_null() ? -1 : rows[0][0].as<long long>();
}

// The UTC day as YYYY-MM-DD, or as YYYYMMDD (partition names) with separator "".
std::string date_text(sys_days day, const char* separator = "-") {
  const std::chrono::year_month_day ymd{day};
  return fmt::format("{:04}{}{:02}{}{:02}", static_cast<int>(ymd.year()), separator,
                     static_cast<unsigned>(ymd.month()), separator, static_cast<unsigned>(ymd.day()));
}

bool partition_exists(sys_days day) {
  const std::string attached = fmt::format(
      "SELECT count(*) FROM pg_inherits WHERE inhparent = 'request_logs'::regclass"
      " AND inhrelid = to_regclass('request_logs_{}')",
      date_text(day, ""));
  return scalar(attached) == 1;
}

// Polls `done` every 5 ms for up to `limit`, on this thread; whether it came true.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = 5s) {
  const auto give_up = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

bool written_reaches(const storage::LogWriter& w, std::uint64_t n) {
  return eventually([&] { return w.counters().written >= n; });
}

std::chrono::milliseconds ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Never write co_await inside a Catch2 macro (GCC 12): await first, then check.
template <class T>
errc code_of(const core::Result<T>& r) {
  return r ? errc::ok : r.error().code;
}

// ---- the fixed data set of the query tests: 2030-01-10 and 2030-01-11 (UTC) ----

const SysTime kDay1 = sys_days{std::chrono::year(2030) / 1 / 10};
const SysTime kDay2 = kDay1 + 24h;

struct Seeded {
  std::vector<core::RequestLog> rows;  // in submission order
};

// Ten rows over two days, two keys and a key-less row, three models, two providers, assorted
// statuses, costs and first-byte times. Written through a LogWriter pinned to 2030-01-10.
Seeded seed_logs() {
  Seeded s;
  auto add = [&](std::string id, SysTime at, std::string key, std::string model,
                 int status) -> core::RequestLog& {
    return s.rows.emplace_back(log_row(std::move(id), us_of(at), std::move(key), std::move(model), status));
  };
  auto& first = add("r1", kDay1 + 1h + 123us, kKeyA, "gpt-4o", 200);
  first.upstream_request_id = "up-1";
  first.cost = 0.25;
  first.ttft_ms = 40;
  first.is_stream = true;
  first.attempts = 2;
  first.client_addr = "10.0.0.1";
  first.cached_tokens = 3;
  first.cache_creation_tokens = 4;
  first.latency_ms = 100;
  add("r2", kDay1 + 2h, kKeyA, "gpt-4o", 429).latency_ms = 200;
  s.rows.back().error_code = "rate_limited";
  auto& r3 = add("r3", kDay1 + 3h, kKeyB, "gpt-4o", 200);
  r3.latency_ms = 300;
  r3.cost = 0.5;
  r3.ttft_ms = 60;
  add("r4", kDay1 + 4h, kKeyB, "gpt-4o", 500).latency_ms = 400;
  add("r5", kDay1 + 5h, kKeyA, "claude", 200).latency_ms = 50;
  add("r6", kDay1 + 5h, kKeyA, "claude", 503).latency_ms = 70;  // same instant as r5
  s.rows.back().provider = "anthropic";
  add("r7", kDay2 + 1h, kKeyB, "claude", 200).provider = "anthropic";
  add("r8", kDay2 + 2h, "", "mini", 404).latency_ms = 10;  // no key
  add("r9", kDay2 + 3h, kKeyA, "", 400).latency_ms = 20;   // no model
  add("r10", kDay2 + 23h + 59min, kKeyB, "mini", 200).cost = 1.5;

  auto o = writer_options();
  o.clock = [] { return kDay1; };  // its partitions: 2030-01-09 .. 2030-01-17
  o.retention_days = 0;            // from 2030, today would be long past retention
  storage::LogWriter writer(o);
  for (const auto& r : s.rows) REQUIRE(writer.submit(r));
  REQUIRE(written_reaches(writer, s.rows.size()));
  return s;
}

}  // namespace

TEST_CASE("LogWriter: rows are visible within 1 s; usage_daily adds up across batches", "[logs][writer]") {
  auto db = log_db();
  auto o = writer_options(250ms);  // the default flush interval
  o.batch_max = 3;
  storage::LogWriter writer(o);

  const auto start = Clock::now();
  REQUIRE(writer.submit(log_row("visible", now_us())));
  const bool visible = eventually(
      [] { return scalar("SELECT count(*) FROM request_logs WHERE request_id = 'visible'") == 1; }, 3s);
  const auto took = ms_since(start);
  REQUIRE(visible);
  CHECK(took < 1s);

  // Two waves, each several batches of at most 3 rows.
  const std::int64_t at = now_us();
  for (int i = 0; i < 7; ++i) {
    auto r = log_row("wave1-" + std::to_string(i), at, kKeyA, "gpt-4o", i < 2 ? 429 : 200);
    if (i == 2) r.error_code = "upstream_error";  // an error with status 200 (a broken stream)
    r.cost = i == 3 ? std::nullopt : std::optional<double>(0.5);
    r.cached_tokens = 1;
    REQUIRE(writer.submit(r));
  }
  REQUIRE(written_reaches(writer, 8));
  for (int i = 0; i < 2; ++i) REQUIRE(writer.submit(log_row("wave2-" + std::to_string(i), at, kKeyA)));
  REQUIRE(written_reaches(writer, 10));

  const std::string today = "(now() AT TIME ZONE 'UTC')::date";
  CHECK(scalar("SELECT requests FROM usage_daily WHERE key_id = '" + std::string(kKeyA) +
               "' AND day = " + today) == 10);
  CHECK(scalar("SELECT errors FROM usage_daily WHERE day = " + today) == 3);
  CHECK(scalar("SELECT prompt_tokens FROM usage_daily WHERE day = " + today) == 100);
  CHECK(scalar("SELECT total_tokens FROM usage_daily WHERE day = " + today) == 150);
  CHECK(scalar("SELECT cached_tokens FROM usage_daily WHERE day = " + today) == 7);
  CHECK(scalar("SELECT (cost * 10)::bigint FROM usage_daily WHERE day = " + today) == 30);  // 6 x 0.5
  // Empty strings are stored as NULL; created_at keeps the microseconds.
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE upstream_request_id IS NULL AND error_code IS NULL"
               " AND client_addr IS NULL") == 9);
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE created_at = timestamptz 'epoch' + " +
               std::to_string(at) + " * interval '1 microsecond'") == 9);
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE request_id = 'wave1-3' AND cost IS NULL") == 1);
  const auto c = writer.counters();
  CHECK(c.written == 10);
  CHECK(c.dropped == 0);
  CHECK(c.failed_batches == 0);
  CHECK(c.queued == 0);
  WARN("first row visible after " << took.count() << " ms");
}

TEST_CASE("LogWriter: key_budget_usage adds each key's tokens and micro-USD since its budget_reset_at",
          "[logs][writer][limits]") {
  auto db = log_db();
  storage::KeyRepo keys(*db);
  std::string budgeted, plain;
  auto create = [&]() -> awaitable<void> {
    core::NewUserKey a{"budgeted", {}, {}}, b{"plain", {}, {}};
    a.limits.budget_usd = 1;
    auto ka = co_await keys.create(a, std::string(64, '1'), "sk-1");
    auto kb = co_await keys.create(b, std::string(64, '2'), "sk-2");
    REQUIRE((ka && kb));
    budgeted = ka->id;
    plain = kb->id;
  };
  test::run_async(create);
  const std::int64_t reset_us = now_us() - 3'600'000'000;  // an hour ago
  scalar("UPDATE user_keys SET budget_reset_at = timestamptz 'epoch' + " + std::to_string(reset_us) +
         " * interval '1 microsecond' WHERE id = '" + budgeted + "' RETURNING 1");

  storage::LogWriter writer(writer_options());
  auto row = [](std::string id, std::int64_t at, std::string key, std::optional<double> cost) {
    auto r = log_row(std::move(id), at, std::move(key));
    r.cost = cost;
    return r;
  };
  REQUIRE(writer.submit(row("before-reset", reset_us - 1, budgeted, 1.0)));   // not counted
  REQUIRE(writer.submit(row("at-reset", reset_us, budgeted, 0.0123456)));     // 12345.6 -> 12346
  REQUIRE(writer.submit(row("no-cost", now_us(), budgeted, std::nullopt)));  // tokens only
  REQUIRE(writer.submit(row("half", now_us(), budgeted, 0.0000015)));        // each row rounded: 2
  REQUIRE(writer.submit(row("plain", now_us(), plain, 0.25)));
  REQUIRE(writer.submit(row("no-key", now_us(), "", 3.0)));
  REQUIRE(writer.submit(row("unknown-key", now_us(), kKeyC, 3.0)));
  REQUIRE(written_reaches(writer, 7));

  const std::string usage = "SELECT tokens * 1000000000 + micro_usd FROM key_budget_usage WHERE key_id = '";
  CHECK(scalar(usage + budgeted + "'") == 45 * 1'000'000'000LL + 12348);
  CHECK(scalar(usage + plain + "'") == 15 * 1'000'000'000LL + 250000);
  CHECK(scalar("SELECT count(*) FROM key_budget_usage") == 2);  // not for no key, nor an unknown one
  // usage_daily still counts every row.
  CHECK(scalar("SELECT sum(requests) FROM usage_daily WHERE key_id = '" + budgeted + "'") == 4);

  // A reset: rows created before it no longer count, later ones do, on top of zero.
  const std::int64_t before_reset = now_us() - 1000;
  auto reset = [&]() -> awaitable<void> {
    core::UserKeyPatch p;
    p.reset_usage = true;
    auto done = co_await keys.update(budgeted, p);
    REQUIRE(done.has_value());
  };
  test::run_async(reset);
  REQUIRE(writer.submit(row("late-old", before_reset, budgeted, 0.5)));
  REQUIRE(writer.submit(row("new", now_us() + 1000, budgeted, 0.000001)));
  REQUIRE(written_reaches(writer, 9));
  CHECK(scalar(usage + budgeted + "'") == 15 * 1'000'000'000LL + 1);
  CHECK(scalar(usage + plain + "'") == 15 * 1'000'000'000LL + 250000);
  CHECK(writer.counters().dropped == 0);
}

TEST_CASE("LogWriter: a full queue drops and counts without blocking; stop() writes what is queued",
          "[logs][writer]") {
  auto db = log_db();
  auto o = writer_options(1h);  // nothing is written until stop()
  o.queue_max = 100;
  storage::LogWriter writer(o);

  std::chrono::nanoseconds slowest{0};
  int accepted = 0;
  const std::int64_t at = now_us();
  for (int i = 0; i < 150; ++i) {
    const auto before = Clock::now();
    accepted += writer.submit(log_row("q" + std::to_string(i), at)) ? 1 : 0;
    slowest = std::max<std::chrono::nanoseconds>(slowest, Clock::now() - before);
  }
  CHECK(accepted == 100);
  CHECK(slowest < 20ms);
  auto c = writer.counters();
  CHECK(c.queued == 100);
  CHECK(c.dropped == 50);
  CHECK(c.written == 0);

  const auto start = Clock::now();
  writer.stop(5s);
  const auto took = ms_since(start);
  CHECK(took < 2s);
  c = writer.counters();
  CHECK(c.written == 100);
  CHECK(c.queued == 0);
  CHECK(scalar("SELECT count(*) FROM request_logs") == 100);
  CHECK_FALSE(writer.submit(log_row("late", at)));  // stopped: dropped and counted
  CHECK(writer.counters().dropped == 51);
  WARN("slowest submit " << std::chrono::duration_cast<std::chrono::microseconds>(slowest).count()
                         << " us; stop() took " << took.count() << " ms");
}

TEST_CASE(
    "LogWriter: a missing partition is made and the batch retried; rows of a day without one are dropped",
    "[logs][writer]") {
  auto db = log_db();
  storage::LogWriter writer(writer_options());
  REQUIRE(writer.submit(log_row("warm", now_us())));
  REQUIRE(written_reaches(writer, 1));

  // Today's partition vanishes (as if maintenance had not run for a new day): the batch fails, the
  // writer maintains and retries, nothing is lost.
  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  {
    pqxx::connection conn(test::db_url());
    pqxx::nontransaction tx(conn);
    tx.exec("DROP TABLE request_logs_" + date_text(today, ""));
  }
  REQUIRE_FALSE(partition_exists(today));
  REQUIRE(writer.submit(log_row("after-drop", now_us())));
  REQUIRE(written_reaches(writer, 2));
  CHECK(partition_exists(today));
  CHECK(writer.counters().failed_batches == 0);

  // One batch: good rows, plus rows 400 days back and 100 days ahead, which have no partition. The
  // good rows land, the others are dropped and counted; usage_daily only counts what landed.
  const std::int64_t day_us = 86'400'000'000;
  const std::int64_t at = now_us();
  REQUIRE(writer.submit(log_row("good-1", at)));
  REQUIRE(writer.submit(log_row("old", at - 400 * day_us)));
  REQUIRE(writer.submit(log_row("good-2", at)));
  REQUIRE(writer.submit(log_row("ahead", at + 100 * day_us)));
  const bool settled = eventually([&] {
    const auto c = writer.counters();
    return c.written + c.dropped >= 6;
  });
  REQUIRE(settled);
  const auto c = writer.counters();
  CHECK(c.written == 4);
  CHECK(c.dropped == 2);
  CHECK(c.failed_batches == 0);
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE request_id IN ('good-1', 'good-2')") == 2);
  CHECK(scalar("SELECT count(*) FROM usage_daily") == 1);
  CHECK(scalar("SELECT sum(requests) FROM usage_daily") == 4);
}

TEST_CASE("LogWriter: values PostgreSQL would refuse are cleaned, so one row cannot fail its batch",
          "[logs][writer]") {
  auto db = log_db();
  storage::LogWriter writer(writer_options());
  core::RequestLog odd = log_row("odd", now_us(), "not-a-uuid", std::string("bad\0name\xff", 9));
  odd.client_addr = std::string(3000, 'x') + "\xc3\xa9";  // cut to 1024 bytes
  odd.prompt_tokens = std::int64_t{1} << 40;              // beyond integer
  odd.status = 70000;                                     // beyond smallint
  odd.cost = std::numeric_limits<double>::quiet_NaN();
  odd.ttft_ms = std::numeric_limits<double>::infinity();
  odd.latency_ms = std::numeric_limits<double>::infinity();
  std::string long_model(1023, 'm');
  long_model += "\xc3\xa9";  // a 2-byte character across the 1024-byte cut
  REQUIRE(writer.submit(odd));
  REQUIRE(writer.submit(log_row("long", now_us(), kKeyA, long_model)));
  core::RequestLog fine = log_row("fine", now_us());
  fine.latency_ms = 2.4023456;  // written to the microsecond, as fixed decimals
  fine.ttft_ms = -0.0004;
  REQUIRE(writer.submit(fine));
  REQUIRE(written_reaches(writer, 3));
  CHECK(writer.counters().dropped == 0);
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE request_id = 'odd' AND key_id IS NULL"
               " AND model = 'bad?name?' AND length(client_addr) = 1024 AND prompt_tokens = 2147483647"
               " AND status = 32767 AND cost IS NULL AND ttft_ms IS NULL AND latency_ms = 0") == 1);
  CHECK(scalar("SELECT octet_length(model) FROM request_logs WHERE request_id = 'long'") == 1023);
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE request_id = 'fine' AND latency_ms = real '2.402'"
               " AND ttft_ms = 0") == 1);
}

TEST_CASE("rfc3339_us: exact microseconds, UTC, years 1 to 9999", "[logs]") {
  using storage::detail::rfc3339_us;
  CHECK(rfc3339_us(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(rfc3339_us(1'700'000'000'123'456) == "2023-11-14T22:13:20.123456Z");
  CHECK(rfc3339_us(-1) == "1969-12-31T23:59:59.999999Z");
  CHECK(rfc3339_us(-62'135'596'800'000'000) == "0001-01-01T00:00:00.000000Z");
  CHECK(rfc3339_us(253'402'300'799'999'999) == "9999-12-31T23:59:59.999999Z");
}

TEST_CASE("LogWriter: any text reaches the log as written, COPY's special characters included",
          "[logs][writer]") {
  auto db = log_db();
  storage::LogWriter writer(writer_options());
  // What the log should hold: text cut to 1024 bytes at a character boundary; with a NUL or invalid
  // UTF-8 in it, those bytes and every non-ASCII one become '?'.
  auto expected = [](std::string s) {
    if (s.size() > 1024) {
      std::size_t end = 1024;
      while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
      s.resize(end);
    }
    if (s.find('\0') == std::string::npos && core::valid_utf8(s)) return s;
    for (char& c : s)
      if (c == '\0' || static_cast<unsigned char>(c) >= 0x80) c = '?';
    return s;
  };
  std::mt19937 rng(20261125);
  const std::string alphabet = std::string("ab\\\t\n\r.N,{}\"' ", 15) + std::string(1, '\0');
  std::vector<std::string> texts = {
      "\\.", "\\N", "a\tb\nc\\d\re", "\\", "\t", "\xc3\xa9t\xc3\xa9", std::string(1030, '\\')};
  for (int i = 0; i < 200; ++i) {
    std::string t;
    const int n = static_cast<int>(rng() % 40);
    for (int j = 0; j < n; ++j) {
      const unsigned pick = rng() % 20;
      if (pick < alphabet.size())
        t += alphabet[pick];
      else if (pick == 17)
        t += "\xc3\xa9";  // a 2-byte character
      else
        t += static_cast<char>(rng() % 256);
    }
    texts.push_back(t);
  }
  const std::int64_t at = now_us();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto r = log_row("text-" + std::to_string(i), at);
    r.model = texts[i];
    r.client_addr = texts[i];
    REQUIRE(writer.submit(r));
  }
  REQUIRE(written_reaches(writer, texts.size()));
  CHECK(writer.counters().dropped == 0);

  pqxx::connection conn(test::db_url());
  pqxx::nontransaction tx(conn);
  const auto rows = tx.exec(
      "SELECT substr(request_id, 6)::int, coalesce(model, ''), coalesce(client_addr, '') FROM request_logs"
      " WHERE request_id LIKE 'text-%'");
  REQUIRE(rows.size() == texts.size());
  int mismatches = 0;
  for (const auto& row : rows) {
    const auto want = expected(texts[row[0].as<std::size_t>()]);
    if (row[1].as<std::string>() != want || row[2].as<std::string>() != want) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("LogWriter: one key in upper and lower case is one key; usage_daily.cost is the rows' exact sum",
          "[logs][writer]") {
  auto db = log_db();
  storage::LogWriter writer(writer_options());
  std::string upper(kKeyA);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // Costs whose binary doubles are not their decimals: the totals add the decimals the log holds.
  const std::vector<double> costs = {0.1, 0.2, 1e-7, 1.2345678901234568e-05, 3.0000000000000004, 1e-12};
  const std::int64_t at = now_us();
  for (std::size_t i = 0; i < costs.size(); ++i) {
    auto r = log_row("case-" + std::to_string(i), at, i % 2 ? upper : std::string(kKeyA));
    r.cost = costs[i];
    REQUIRE(writer.submit(r));
  }
  REQUIRE(written_reaches(writer, costs.size()));
  CHECK(writer.counters().failed_batches == 0);
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE key_id = '" + std::string(kKeyA) + "'") == 6);
  CHECK(scalar("SELECT requests FROM usage_daily WHERE key_id = '" + std::string(kKeyA) + "'") == 6);
  CHECK(scalar("SELECT count(*) FROM usage_daily u WHERE u.cost = (SELECT sum(cost) FROM request_logs)"
               " AND u.cost = 3.300012445679901634568") == 1);
}

TEST_CASE(
    "LogWriter: maintenance keeps yesterday to 7 days ahead; retention drops old days, usage_daily stays",
    "[logs][writer][partitions]") {
  using std::chrono::days;
  auto db = log_db();
  const SysTime now = std::chrono::system_clock::now();
  const SysTime past = now - days(40);
  const auto past_day = std::chrono::floor<days>(past);

  auto o = writer_options();
  o.retention_days = 30;
  o.clock = [past] { return past; };  // the writer lives 40 days ago
  storage::LogWriter writer(o);
  core::RequestLog stamped = log_row("past-1", 0);  // no time: stamped with the writer's clock
  REQUIRE(writer.submit(stamped));
  REQUIRE(writer.submit(log_row("past-2", us_of(past))));
  REQUIRE(written_reaches(writer, 2));
  for (int d = -1; d <= 7; ++d) CHECK(partition_exists(past_day + days(d)));
  CHECK_FALSE(partition_exists(past_day + days(8)));
  CHECK(scalar("SELECT count(*) FROM request_logs WHERE created_at < now() - interval '35 days'") == 2);

  // Today: the days that ended more than 30 days ago go, with their rows; the totals stay.
  REQUIRE(writer.maintain(now).has_value());
  for (int d = -1; d <= 7; ++d) CHECK_FALSE(partition_exists(past_day + days(d)));
  const auto today = std::chrono::floor<days>(now);
  for (int d = -1; d <= 7; ++d) CHECK(partition_exists(today + days(d)));
  CHECK(scalar("SELECT count(*) FROM request_logs") == 0);
  CHECK(scalar("SELECT requests FROM usage_daily WHERE day = '" + date_text(past_day) + "'") == 2);

  // The boundary: a day that ended 30 days ago and a bit goes, the next one stays.
  REQUIRE(writer.maintain(now - days(30)).has_value());
  CHECK(partition_exists(today - days(31)));
  REQUIRE(writer.maintain(now).has_value());
  CHECK_FALSE(partition_exists(today - days(31)));
  CHECK(partition_exists(today - days(30)));

  // The writer maintains by itself, on its clock, every maintenance_interval.
  auto far = std::make_shared<std::atomic<std::int64_t>>(us_of(now));
  auto moving = writer_options();
  moving.retention_days = 0;  // keep everything: this clock runs far ahead of the other tests
  moving.maintenance_interval = 50ms;
  moving.clock = [far] { return SysTime(std::chrono::microseconds(far->load())); };
  storage::LogWriter ticking(moving);
  const sys_days later = sys_days{std::chrono::year(2031) / 6 / 1};
  far->store(us_of(later));
  CHECK(eventually([&] { return partition_exists(later + days(7)); }, 3s));
}

TEST_CASE("LogWriter: a lost session is reconnected; an unreachable server drops, counts and backs off",
          "[logs][writer]") {
  auto db = log_db();
  {
    storage::LogWriter writer(writer_options());
    REQUIRE(writer.submit(log_row("before", now_us())));
    REQUIRE(written_reaches(writer, 1));
    scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'llmgw'"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
    REQUIRE(writer.submit(log_row("after", now_us())));
    REQUIRE(written_reaches(writer, 2));
    CHECK(writer.counters().dropped == 0);
  }

  // Nothing listens there: every batch fails at once, twice (with the retry), and is dropped.
  auto o = writer_options(20ms);
  o.url = "host=127.0.0.1 port=1 dbname=llmgw user=postgres";
  storage::LogWriter writer(o);
  const auto start = Clock::now();
  int submitted = 0;
  while (ms_since(start) < 1200ms) {
    CHECK(writer.submit(log_row("lost", now_us())));  // still accepted
    ++submitted;
    std::this_thread::sleep_for(10ms);
  }
  const auto stop_start = Clock::now();
  writer.stop(500ms);
  CHECK(ms_since(stop_start) < 1500ms);
  const auto c = writer.counters();
  CHECK(c.written == 0);
  CHECK(c.dropped == static_cast<std::uint64_t>(submitted));
  CHECK(c.failed_batches >= 2);
  // Backing off (100, 200, 400, 800 ms ... ) instead of a batch every 20 ms.
  CHECK(c.failed_batches <= 8);
  WARN(c.failed_batches << " failed batches of " << submitted << " rows in 1.2 s");
}

TEST_CASE("LogWriter: stop() returns within its bound when the server hangs; the rest is dropped",
          "[logs][writer][hang]") {
  auto db = log_db();
  storage::LogWriter writer(writer_options());
  REQUIRE(writer.submit(log_row("warm", now_us())));
  REQUIRE(written_reaches(writer, 1));  // the writer's session is open

  std::chrono::milliseconds took{};
  {
    test::FrozenServer frozen(5s);
    for (int i = 0; i < 10; ++i) REQUIRE(writer.submit(log_row("stuck", now_us())));
    std::this_thread::sleep_for(150ms);  // the batch is now waiting for the frozen server
    const auto start = Clock::now();
    writer.stop(300ms);
    took = ms_since(start);
  }
  CHECK(took >= 280ms);
  CHECK(took < 1500ms);
  const auto c = writer.counters();
  CHECK(c.written == 1);
  CHECK(c.dropped == 10);
  CHECK(c.queued == 0);
  WARN("stop(300ms) with a hung server took " << took.count() << " ms");
}

TEST_CASE("LogRepo::logs: filters, newest first, paging, every field", "[logs][repo]") {
  auto db = log_db();
  const Seeded seeded = seed_logs();
  storage::LogRepo repo(*db);
  auto body = [&]() -> awaitable<void> {
    storage::LogQuery all;
    auto page = co_await repo.logs(all);
    REQUIRE(page.has_value());
    CHECK(page->total == 10);
    REQUIRE(page->rows.size() == 10);
    std::vector<std::string> order;
    for (const auto& e : page->rows) order.push_back(e.row.request_id);
    // r5 and r6 share an instant: the later id first.
    CHECK(order == std::vector<std::string>{"r10", "r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"});

    const storage::LogEntry& e = page->rows.back();
    const core::RequestLog& in = seeded.rows.front();
    CHECK(e.id > 0);
    CHECK(e.created_at == "2030-01-10T01:00:00.000123Z");
    CHECK(e.row.created_at_us == in.created_at_us);
    CHECK(e.row.upstream_request_id == "up-1");
    CHECK(e.row.key_id == kKeyA);
    CHECK(e.row.model == "gpt-4o");
    CHECK(e.row.provider == "openai");
    CHECK(e.row.upstream_model == "gpt-4o-2024");
    CHECK(e.row.status == 200);
    CHECK(e.row.error_code.empty());
    CHECK(e.row.prompt_tokens == 10);
    CHECK(e.row.completion_tokens == 5);
    CHECK(e.row.cached_tokens == 3);
    CHECK(e.row.cache_creation_tokens == 4);
    CHECK(e.row.total_tokens == 15);
    CHECK(e.row.cost == 0.25);
    CHECK(e.row.latency_ms == 100.0);
    CHECK(e.row.ttft_ms == 40.0);
    CHECK(e.row.is_stream);
    CHECK(e.row.attempts == 2);
    CHECK(e.row.client_addr == "10.0.0.1");
    CHECK(page->rows.front().row.cost == 1.5);
    CHECK(page->rows[1].row.model.empty());   // r9: NULL model
    CHECK(page->rows[2].row.key_id.empty());  // r8: NULL key
    CHECK_FALSE(page->rows[1].row.ttft_ms.has_value());

    // Each answer: (total, request ids in order).
    auto ids = [&](storage::LogQuery q) -> awaitable<std::pair<std::int64_t, std::vector<std::string>>> {
      auto r = co_await repo.logs(std::move(q));
      std::pair<std::int64_t, std::vector<std::string>> out{-1, {}};
      if (!r) co_return out;
      out.first = r->total;
      for (const auto& x : r->rows) out.second.push_back(x.row.request_id);
      co_return out;
    };
    using Ids = std::vector<std::string>;

    storage::LogQuery by_key;
    by_key.key_id = kKeyB;
    auto key_b = co_await ids(by_key);
    CHECK(key_b.first == 4);
    CHECK(key_b.second == Ids{"r10", "r7", "r4", "r3"});

    storage::LogQuery by_model;
    by_model.model = "claude";
    by_model.provider = "anthropic";
    auto claude = co_await ids(by_model);
    CHECK(claude.second == Ids{"r7", "r6"});

    storage::LogQuery exact;
    exact.status = storage::parse_status_filter("429");
    auto limited = co_await ids(exact);
    CHECK(limited.second == Ids{"r2"});
    storage::LogQuery server_errors;
    server_errors.status = storage::parse_status_filter("5xx");
    auto fives = co_await ids(server_errors);
    CHECK(fives.second == Ids{"r6", "r4"});
    storage::LogQuery client_errors;
    client_errors.status = storage::parse_status_filter("4XX");
    client_errors.key_id = kKeyA;
    auto fours = co_await ids(client_errors);
    CHECK(fours.second == Ids{"r9", "r2"});

    // [from, to): r3 at from is in, r5 / r6 at to are out.
    storage::LogQuery range;
    range.from_us = us_of(kDay1 + 3h);
    range.to_us = us_of(kDay1 + 5h);
    auto window = co_await ids(range);
    CHECK(window.second == Ids{"r4", "r3"});

    storage::LogQuery paged;
    paged.per_page = 3;
    paged.page = 2;
    auto second = co_await ids(paged);
    CHECK(second.first == 10);
    CHECK(second.second == Ids{"r7", "r6", "r5"});
    paged.page = 4;
    auto last = co_await ids(paged);
    CHECK(last.second == Ids{"r1"});
    paged.page = 5;
    auto beyond = co_await ids(paged);
    CHECK(beyond.first == 10);
    CHECK(beyond.second.empty());

    storage::LogQuery nothing;
    nothing.model = "no-such-model";
    auto none = co_await ids(nothing);
    CHECK(none.first == 0);
    CHECK(none.second.empty());

    // Bad input is the client's 400, with the parameter named.
    const std::vector<std::pair<storage::LogQuery, std::string>> bad = [] {
      std::vector<std::pair<storage::LogQuery, std::string>> v;
      storage::LogQuery q;
      q.per_page = 0;
      v.emplace_back(q, "per_page");
      q.per_page = 501;
      v.emplace_back(q, "per_page");
      q.per_page = 500;
      q.page = 0;
      v.emplace_back(q, "page");
      q.page = 1;
      q.key_id = "not-a-uuid";
      v.emplace_back(q, "key_id");
      return v;
    }();
    for (const auto& [q, param] : bad) {
      auto r = co_await repo.logs(q);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == errc::invalid_request);
      CHECK(r.error().param == param);
    }
    for (const char* bad_status : {"600", "6xx", "0xx", "42", "4x9", "abc", "4290", ""})
      CHECK_FALSE(storage::parse_status_filter(bad_status).has_value());
    const auto teapot = storage::parse_status_filter("418");
    REQUIRE(teapot.has_value());
    CHECK((teapot->from == 418 && teapot->to == 418));
    const auto ones = storage::parse_status_filter("1xx");
    REQUIRE(ones.has_value());
    CHECK((ones->from == 100 && ones->to == 199));

    storage::LogQuery widest;
    widest.per_page = 500;
    widest.page = std::numeric_limits<std::int64_t>::max();  // empty, not an overflow
    auto ok = co_await repo.logs(widest);
    CHECK(code_of(ok) == errc::ok);
  };
  test::run_async(body);
}

TEST_CASE("LogRepo::stats: groups, errors, tokens, null costs, percentiles", "[logs][repo]") {
  auto db = log_db();
  seed_logs();
  storage::LogRepo repo(*db);
  auto body = [&]() -> awaitable<void> {
    const std::int64_t from = us_of(kDay1);
    const std::int64_t to = us_of(kDay2 + 24h);

    auto by_model = co_await repo.stats(from, to, storage::StatsGroup::model);
    REQUIRE(by_model.has_value());
    REQUIRE(by_model->size() == 4);  // claude, gpt-4o, mini, then the rows without a model
    const storage::StatsRow& claude = (*by_model)[0];
    CHECK(claude.group == "claude");
    CHECK(claude.requests == 3);
    CHECK(claude.errors == 1);
    CHECK_FALSE(claude.cost.has_value());  // no row of the group had a cost
    CHECK_FALSE(claude.p50_ttft_ms.has_value());
    CHECK_FALSE(claude.p95_ttft_ms.has_value());
    const storage::StatsRow& gpt = (*by_model)[1];
    CHECK(gpt.group == "gpt-4o");
    CHECK(gpt.requests == 4);
    CHECK(gpt.errors == 2);  // 429 (with an error code) and 500
    CHECK(gpt.prompt_tokens == 40);
    CHECK(gpt.completion_tokens == 20);
    CHECK(gpt.total_tokens == 60);
    REQUIRE(gpt.cost.has_value());
    CHECK(*gpt.cost == Approx(0.75));          // the known costs only
    CHECK(gpt.p50_latency_ms == Approx(250));  // 100, 200, 300, 400
    CHECK(gpt.p95_latency_ms == Approx(385));
    CHECK(gpt.p50_ttft_ms == Approx(50));  // 40, 60
    CHECK(gpt.p95_ttft_ms == Approx(59));
    CHECK((*by_model)[2].group == "mini");
    CHECK((*by_model)[2].cost == 1.5);
    CHECK_FALSE((*by_model)[3].group.has_value());
    CHECK((*by_model)[3].requests == 1);

    auto by_day = co_await repo.stats(from, to, storage::StatsGroup::day);
    REQUIRE(by_day.has_value());
    REQUIRE(by_day->size() == 2);
    CHECK((*by_day)[0].group == "2030-01-10");
    CHECK((*by_day)[0].requests == 6);
    CHECK((*by_day)[0].errors == 3);
    CHECK((*by_day)[1].group == "2030-01-11");
    CHECK((*by_day)[1].requests == 4);
    CHECK((*by_day)[1].errors == 2);

    auto by_key = co_await repo.stats(from, to, storage::StatsGroup::key);
    REQUIRE(by_key.has_value());
    REQUIRE(by_key->size() == 3);
    CHECK((*by_key)[0].group == kKeyA);
    CHECK((*by_key)[0].requests == 5);
    CHECK((*by_key)[1].group == kKeyB);
    CHECK((*by_key)[1].requests == 4);
    CHECK_FALSE((*by_key)[2].group.has_value());

    auto by_provider = co_await repo.stats(from, to, storage::StatsGroup::provider);
    REQUIRE(by_provider.has_value());
    REQUIRE(by_provider->size() == 2);
    CHECK((*by_provider)[0].group == "anthropic");
    CHECK((*by_provider)[0].requests == 2);
    CHECK((*by_provider)[1].group == "openai");
    CHECK((*by_provider)[1].requests == 8);

    // [from, to): only the first day, and nothing at all outside the data.
    auto first_day = co_await repo.stats(from, us_of(kDay2), storage::StatsGroup::day);
    REQUIRE(first_day.has_value());
    REQUIRE(first_day->size() == 1);
    CHECK((*first_day)[0].requests == 6);
    auto empty = co_await repo.stats(us_of(kDay1 - 48h), from, storage::StatsGroup::model);
    REQUIRE(empty.has_value());
    CHECK(empty->empty());

    CHECK(storage::parse_stats_group("model") == storage::StatsGroup::model);
    CHECK(storage::parse_stats_group("day") == storage::StatsGroup::day);
    CHECK_FALSE(storage::parse_stats_group("week").has_value());
  };
  test::run_async(body);
}

TEST_CASE("LogRepo::key_usage: today, this month and all time from usage_daily", "[logs][repo]") {
  auto db = log_db();
  seed_logs();  // key A: r1, r2, r5, r6 on 2030-01-10, r9 on 2030-01-11
  {
    pqxx::connection conn(test::db_url());
    pqxx::nontransaction tx(conn);
    tx.exec(fmt::format(
        "INSERT INTO usage_daily (key_id, day, requests, errors, prompt_tokens, completion_tokens,"
        " cached_tokens, total_tokens, cost) VALUES"
        " ('{0}', '2030-01-03', 100, 1, 1000, 500, 10, 1500, 2.5),"
        " ('{0}', '2029-12-31', 7, 0, 70, 35, 0, 105, 0.5),"
        " ('{1}', '2030-01-10', 50, 0, 1, 1, 1, 2, 9)",
        kKeyA, kKeyC));
  }
  storage::LogRepo repo(*db);
  auto body = [&]() -> awaitable<void> {
    auto usage = co_await repo.key_usage(kKeyA, kDay1 + 15h);
    REQUIRE(usage.has_value());
    CHECK(usage->today.requests == 4);
    CHECK(usage->today.errors == 2);
    CHECK(usage->today.prompt_tokens == 40);
    CHECK(usage->today.completion_tokens == 20);
    CHECK(usage->today.cached_tokens == 3);
    CHECK(usage->today.total_tokens == 60);
    CHECK(usage->today.cost == Approx(0.25));
    CHECK(usage->month.requests == 105);  // 01-03, 01-10, 01-11
    CHECK(usage->month.errors == 4);
    CHECK(usage->month.total_tokens == 1500 + 75);
    CHECK(usage->month.cost == Approx(2.75));
    CHECK(usage->total.requests == 112);
    CHECK(usage->total.prompt_tokens == 1000 + 70 + 50);
    CHECK(usage->total.cost == Approx(3.25));

    auto unused = co_await repo.key_usage("dddddddd-0000-4000-8000-000000000004", kDay1);
    REQUIRE(unused.has_value());
    CHECK(unused->total.requests == 0);
    CHECK(unused->total.cost == 0.0);
    auto bad = co_await repo.key_usage("nope", kDay1);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == errc::invalid_request);
    CHECK(bad.error().param == "key_id");
  };
  test::run_async(body);
}
