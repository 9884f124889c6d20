#include "core/config.hpp"

#include "core/encoding.hpp"

#include <fmt/format.h>
#include <boost/url/parse.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

namespace core {
namespace {

struct Parser {
  const EnvLookup& env;
  ConfigErrors errors;

  const char* get(const char* name) const {
    const char* v = env(name);
    return (v && *v) ? v : nullptr;
  }
  void fail(std::string msg) { errors.messages.push_back(std::move(msg)); }

  void seconds(const char* name, Seconds& out, double min = 0.001) {
    const char* v = get(name);
    if (!v) return;
    double d = 0;
    auto [p, ec] = std::from_chars(v, v + std::strlen(v), d);
    if (ec != std::errc{} || *p != '\0' || !std::isfinite(d) || d < min)
      return fail(fmt::format("{}: expected a number of seconds >= {}, got '{}'", name, min, v));
    out = Seconds{d};
  }

  template <class Int>
  void integer(const char* name, Int& out, long long min, long long max) {
    const char* v = get(name);
    if (!v) return;
    long long n = 0;
    auto [p, ec] = std::from_chars(v, v + std::strlen(v), n);
    if (ec != std::errc{} || *p != '\0' || n < min || n > max)
      return fail(fmt::format("{}: expected an integer in [{}, {}], got '{}'", name, min, max, v));
    out = static_cast<Int>(n);
  }

  void listen(const char* name, Config& c) {
    const char* v = get(name);
    if (!v) return;
    std::string_view s(v);
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos)
      return fail(fmt::format("{}: expected host:port, got '{}'", name, s));
    std::string host(s.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    auto ps = s.substr(colon + 1);
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (host.empty() || ec != std::errc{} || p != ps.data() + ps.size() || port > 65535)
      return fail(fmt::format("{}: expected host:port, got '{}'", name, s));
    c.listen_host = host;
    c.listen_port = static_cast<std::uint16_t>(port);
  }

  void redis(const char* name, RedisEndpoint& r) {
    const char* v = get(name);
    if (!v) return;
    auto u = boost::urls::parse_uri(v);
    if (!u || (u->scheme() != "redis") || u->host().empty())
      return fail(fmt::format("{}: expected redis://[user:password@]host[:port][/db]", name));
    r.host = u->host();
    if (u->has_port()) {
      if (u->port_number() == 0) return fail(fmt::format("{}: bad port", name));
      r.port = u->port_number();
    }
    if (u->has_userinfo()) {
      r.username = u->user();
      r.password = u->password();
    }
    auto path = u->path();
    if (!path.empty() && path != "/") {
      int db = -1;
      auto d = std::string_view(path).substr(1);
      auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), db);
      if (ec != std::errc{} || p != d.data() + d.size() || db < 0)
        return fail(fmt::format("{}: database must be a number", name));
      r.db = db;
    }
  }
};

}  // namespace

std::optional<std::string> decode_key32(std::string_view text) {
  if (text.size() == 64) {
    if (auto raw = hex_decode(text)) return raw;
  }
  if (auto raw = base64_decode(text); raw && raw->size() == 32) return raw;
  return std::nullopt;
}

std::variant<Config, ConfigErrors> parse_config(const EnvLookup& env) {
  Config c;
  Parser p{env, {}};

  p.listen("LISTEN_ADDR", c);
  if (auto v = p.get("DATABASE_URL")) c.database_url = v;
  p.redis("REDIS_URL", c.redis);
  if (auto v = p.get("REDIS_PREFIX")) c.redis_prefix = v;

  if (auto v = p.get("ADMIN_KEY")) {
    c.admin_key = v;
    if (c.admin_key.size() < 16) p.fail("ADMIN_KEY: must be at least 16 characters");
  } else {
    p.fail("ADMIN_KEY: required (the Bearer token for /admin)");
  }

  if (auto v = p.get("ENCRYPTION_KEY")) {
    if (auto k = decode_key32(v))
      c.encryption_key = *k;
    else
      p.fail("ENCRYPTION_KEY: must be 32 bytes, as 64 hex characters or base64");
  } else {
    p.fail("ENCRYPTION_KEY: required (32 bytes, hex or base64; encrypts provider API keys)");
  }

  if (auto v = p.get("LOG_LEVEL")) {
    std::string_view s(v);
    if (s == "debug")
      c.log_level = LogLevel::debug;
    else if (s == "info")
      c.log_level = LogLevel::info;
    else if (s == "warn")
      c.log_level = LogLevel::warn;
    else if (s == "error")
      c.log_level = LogLevel::error;
    else
      p.fail(fmt::format("LOG_LEVEL: expected debug|info|warn|error, got '{}'", s));
  }
  p.integer("MAX_BODY_BYTES", c.max_body_bytes, 1024, 1LL << 32);
  p.integer("MAX_HEADER_BYTES", c.max_header_bytes, 1024, 1 << 20);
  p.integer("MAX_CONNECTIONS", c.max_connections, 1, 10000000);
  p.integer("WORKERS", c.workers, 0, 256);
  p.integer("MAX_BUFFERED_BODY_BYTES", c.max_buffered_body_bytes, 1024, 1LL << 40);
  p.seconds("HEADER_TIMEOUT", c.header_timeout);
  p.seconds("BODY_TIMEOUT", c.body_timeout);
  p.seconds("KEEPALIVE_TIMEOUT", c.keepalive_timeout);
  p.seconds("SHUTDOWN_GRACE_SECONDS", c.shutdown_grace, 0);
  p.seconds("SHUTDOWN_DELAY_SECONDS", c.shutdown_delay, 0);
  p.seconds("UPSTREAM_CONNECT_TIMEOUT", c.upstream_connect_timeout);
  p.seconds("UPSTREAM_FIRST_BYTE_TIMEOUT", c.upstream_first_byte_timeout);
  p.seconds("UPSTREAM_IDLE_TIMEOUT", c.upstream_idle_timeout);
  p.integer("UPSTREAM_MAX_CONNS_PER_HOST", c.upstream_max_conns_per_host, 0, 10000000);
  p.integer("UPSTREAM_MAX_IDLE_PER_HOST", c.upstream_max_idle_per_host, 0, 100000);
  p.seconds("UPSTREAM_QUEUE_TIMEOUT", c.upstream_queue_timeout, 0);
  if (auto v = p.get("UPSTREAM_CA_FILE")) c.upstream_ca_file = v;
  p.integer("ROUTE_COOLDOWN_FAILURES", c.route_cooldown_failures, 1, 1000);
  p.seconds("ROUTE_COOLDOWN_WINDOW", c.route_cooldown_window);
  p.seconds("ROUTE_COOLDOWN_SECONDS", c.route_cooldown, 0);
  p.seconds("RESPONSES_TTL", c.responses_ttl, 60);
  p.seconds("LIMIT_LEASE_SECONDS", c.limit_lease, 1);
  p.integer("LIMIT_CLOCK_OFFSET_MS", c.limit_clock_offset_ms, -10LL * 365 * 86400000, 10LL * 365 * 86400000);
  if (auto v = p.get("METRICS_TOKEN")) c.metrics_token = v;
  p.integer("LOG_RETENTION_DAYS", c.log_retention_days, 1, 3650);
  p.integer("LOG_QUEUE_MAX", c.log_queue_max, 1, 10000000);
  p.integer("LOG_BATCH_MAX", c.log_batch_max, 1, 100000);
  p.integer("LOG_FLUSH_MS", c.log_flush_ms, 1, 60000);
  p.integer("DB_POOL_SIZE", c.db_pool_size, 1, 64);
  p.seconds("DB_TIMEOUT", c.db_timeout);
  p.seconds("REDIS_TIMEOUT", c.redis_timeout);

  if (!p.errors.messages.empty()) return p.errors;
  return c;
}

std::size_t usable_cpus(std::size_t affinity, std::string_view cpu_max) noexcept {
  std::size_t n = std::max<std::size_t>(1, affinity);
  const auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return n;
  const auto quota_text = cpu_max.substr(0, space);
  auto period_text = cpu_max.substr(space + 1);
  while (!period_text.empty() && (period_text.back() == '\n' || period_text.back() == ' ')) period_text.remove_suffix(1);
  std::uint64_t quota = 0, period = 0;
  auto [q, qe] = std::from_chars(quota_text.data(), quota_text.data() + quota_text.size(), quota);
  auto [pp, pe] = std::from_chars(period_text.data(), period_text.data() + period_text.size(), period);
  if (qe != std::errc{} || pe != std::errc{} || q != quota_text.data() + quota_text.size() ||
      pp != period_text.data() + period_text.size() || period == 0 || quota == 0)
    return n;  // "max" (no quota) or unreadable
  const std::size_t limit = static_cast<std::size_t>((quota + period - 1) / period);
  return std::max<std::size_t>(1, std::min(n, limit));
}

std::string config_help() {
  return R"(llm-gateway: an OpenAI-compatible gateway in front of many LLM providers.

Usage: llm-gateway [--help] [--version]
All settings come from environment variables (durations in seconds, fractions allowed):

  LISTEN_ADDR                  host:port to listen on                  (0.0.0.0:8080)
  WORKERS                      event-loop threads, each listening on    (0: one per usable CPU,
                               the address (SO_REUSEPORT)               cgroup quota included)
  DATABASE_URL                 PostgreSQL URL, the source of truth     (postgresql://postgres@127.0.0.1:5432/llmgw)
  REDIS_URL                    redis://[user:pass@]host[:port][/db]    (redis://127.0.0.1:6379/0)
  REDIS_PREFIX                 prefix of every Redis key               (llmgw:)
  ADMIN_KEY                    Bearer token for /admin, >= 16 chars    (required)
  ENCRYPTION_KEY               32 bytes as hex or base64; encrypts     (required)
                               provider API keys (AES-256-GCM)
  LOG_LEVEL                    debug|info|warn|error                   (info)
  MAX_BODY_BYTES               request body limit -> 413               (10485760)
  MAX_HEADER_BYTES             request head limit (all bytes) -> 431   (65536)
  MAX_CONNECTIONS              client connections per process -> 503   (20000, lowered to fit
                               the file-descriptor limit)
  MAX_BUFFERED_BODY_BYTES      request bodies held at once, all         (268435456)
                               connections together -> 503
  HEADER_TIMEOUT               time to receive a request head, from    (10)
                               its first byte -> 408
  BODY_TIMEOUT                 time to receive the request body -> 408 (30)
  KEEPALIVE_TIMEOUT            idle keep-alive connection lifetime     (75)
  SHUTDOWN_GRACE_SECONDS       drain deadline after SIGTERM/SIGINT     (30)
  SHUTDOWN_DELAY_SECONDS       before draining: keep accepting, with   (0)
                               /health/ready 503 and keep-alive off
  UPSTREAM_CONNECT_TIMEOUT     upstream TCP+TLS connect -> 502         (10)
  UPSTREAM_FIRST_BYTE_TIMEOUT  upstream response header -> 504         (600)
  UPSTREAM_IDLE_TIMEOUT        max gap between upstream body reads     (300)
  UPSTREAM_MAX_CONNS_PER_HOST  concurrent upstream connections / host, (0: no cap, bounded by
                               per worker; beyond, requests queue      MAX_CONNECTIONS)
  UPSTREAM_MAX_IDLE_PER_HOST   pooled idle connections / host / worker (256)
  UPSTREAM_QUEUE_TIMEOUT       wait for a free slot at that cap, FIFO; (5)
                               then 503 overloaded (0: no waiting)
  UPSTREAM_CA_FILE             extra CA bundle to trust (PEM)          (system store only)
  ROUTE_COOLDOWN_FAILURES      failures of a route within the window   (3)
                               that take it out of rotation
  ROUTE_COOLDOWN_WINDOW        that window                             (30)
  ROUTE_COOLDOWN_SECONDS       how long such a route is skipped        (30)
  RESPONSES_TTL                how long a Responses API id is routable (2592000)
  LIMIT_LEASE_SECONDS          a running request's parallel slot and   (60)
                               budget reservation, renewed while it
                               runs; a dead replica's expire after it
  LIMIT_CLOCK_OFFSET_MS        shifts the rate limiter's clock; tests  (0)
  METRICS_TOKEN                Bearer token for GET /metrics           (none: open)
  LOG_RETENTION_DAYS           days of request logs kept in PostgreSQL (30)
  LOG_QUEUE_MAX                request-log rows waiting to be written; (20000)
                               beyond, rows are dropped and counted
  LOG_BATCH_MAX                request-log rows per PostgreSQL batch   (1000)
  LOG_FLUSH_MS                 the longest a request-log row waits for (250)
                               its batch, in ms
  DB_POOL_SIZE                 PostgreSQL connections (worker threads) (4)
  DB_TIMEOUT                   PostgreSQL statement timeout            (5)
  REDIS_TIMEOUT                deadline of each Redis command          (0.5)
)";
}

}  // namespace core
