#include "core/config.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>

namespace {

using Env = std::map<std::string, std::string>;

std::variant<core::Config, core::ConfigErrors> parse(const Env& env) {
  return core::parse_config([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

Env minimal() {
  return {{"ADMIN_KEY", "0123456789abcdef"}, {"ENCRYPTION_KEY", std::string(64, 'a')}};
}

std::string all_errors(const std::variant<core::Config, core::ConfigErrors>& r) {
  std::string s;
  for (auto& m : std::get<core::ConfigErrors>(r).messages) s += m + "\n";
  return s;
}

}  // namespace

TEST_CASE("config: defaults with only the required variables") {
  auto r = parse(minimal());
  REQUIRE(std::holds_alternative<core::Config>(r));
  const auto& c = std::get<core::Config>(r);
  CHECK(c.listen_host == "0.0.0.0");
  CHECK(c.listen_port == 8080);
  CHECK(c.max_body_bytes == 10u * 1024 * 1024);
  CHECK(c.shutdown_grace.count() == 30);
  CHECK(c.upstream_first_byte_timeout.count() == 600);
  CHECK(c.encryption_key == std::string(32, '\xaa'));
  CHECK(c.log_batch_max == 1000);
  CHECK(c.log_flush_ms == 250);
}

TEST_CASE("config: ADMIN_KEY is required and at least 16 chars") {
  Env e = minimal();
  e.erase("ADMIN_KEY");
  auto r = parse(e);
  REQUIRE(std::holds_alternative<core::ConfigErrors>(r));
  CHECK_THAT(all_errors(r), Catch::Contains("ADMIN_KEY"));
  e["ADMIN_KEY"] = "short";
  r = parse(e);
  REQUIRE(std::holds_alternative<core::ConfigErrors>(r));
  CHECK_THAT(all_errors(r), Catch::Contains("at least 16"));
}

TEST_CASE("config: every bad value is reported, naming the variable") {
  Env e = minimal();
  e["LISTEN_ADDR"] = "nohost";
  e["HEADER_TIMEOUT"] = "-1";
  e["MAX_BODY_BYTES"] = "12abc";
  e["LOG_LEVEL"] = "loud";
  e["ENCRYPTION_KEY"] = "tooshort";
  e["REDIS_URL"] = "http://x";
  auto r = parse(e);
  REQUIRE(std::holds_alternative<core::ConfigErrors>(r));
  CHECK(std::get<core::ConfigErrors>(r).messages.size() == 6);
  const auto text = all_errors(r);
  for (auto name :
       {"LISTEN_ADDR", "HEADER_TIMEOUT", "MAX_BODY_BYTES", "LOG_LEVEL", "ENCRYPTION_KEY", "REDIS_URL"})
    CHECK_THAT(text, Catch::Contains(name));
}

TEST_CASE("config: parses addresses, urls, fractional seconds, base64 key") {
  Env e = minimal();
  e["LISTEN_ADDR"] = "127.0.0.1:0";
  e["REDIS_URL"] = "redis://user:pw@10.1.2.3:6380/2";
  e["UPSTREAM_IDLE_TIMEOUT"] = "0.25";
  e["LOG_BATCH_MAX"] = "200";
  e["LOG_FLUSH_MS"] = "50";
  e["ENCRYPTION_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  auto r = parse(e);
  REQUIRE(std::holds_alternative<core::Config>(r));
  const auto& c = std::get<core::Config>(r);
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 0);
  CHECK(c.redis.host == "10.1.2.3");
  CHECK(c.redis.port == 6380);
  CHECK(c.redis.username == "user");
  CHECK(c.redis.password == "pw");
  CHECK(c.redis.db == 2);
  CHECK(c.upstream_idle_timeout.count() == Approx(0.25));
  CHECK(c.log_batch_max == 200);
  CHECK(c.log_flush_ms == 50);
  REQUIRE(c.encryption_key.size() == 32);
  CHECK(c.encryption_key[31] == '\x1f');
}

TEST_CASE("config: help lists every variable") {
  const auto help = core::config_help();
  for (auto name : {"LISTEN_ADDR", "DATABASE_URL", "REDIS_URL", "ADMIN_KEY", "ENCRYPTION_KEY",
                    "UPSTREAM_CONNECT_TIMEOUT", "UPSTREAM_FIRST_BYTE_TIMEOUT", "UPSTREAM_IDLE_TIMEOUT",
                    "SHUTDOWN_GRACE_SECONDS", "MAX_BODY_BYTES", "LOG_LEVEL", "LOG_BATCH_MAX", "LOG_FLUSH_MS"})
    CHECK_THAT(help, Catch::Contains(name));
}

TEST_CASE("config: WORKERS, and the CPUs a process may use") {
  CHECK(core::usable_cpus(8, "") == 8);
  CHECK(core::usable_cpus(8, "max 100000\n") == 8);
  CHECK(core::usable_cpus(8, "200000 100000\n") == 2);
  CHECK(core::usable_cpus(8, "250000 100000") == 3);  // 2.5 CPUs: a third thread has work
  CHECK(core::usable_cpus(8, "50000 100000") == 1);
  CHECK(core::usable_cpus(2, "800000 100000") == 2);  // the affinity mask is the lower bound
  CHECK(core::usable_cpus(0, "garbage") == 1);
}
