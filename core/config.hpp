#pragma once
// All runtime settings, parsed once from the environment into one aggregate.
#include "core/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace core {

using Seconds = std::chrono::duration<double>;

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;
  std::string password;
  int db = 0;
};

enum class LogLevel { debug, info, warn, error };

struct Config {
  std::string listen_host = "0.0.0.0";
  std::uint16_t listen_port = 8080;
  // Event-loop threads, each with its own listening socket (SO_REUSEPORT), caches, pools and
  // Redis connections. 0: one per CPU this process may use (affinity and cgroup quota).
  std::size_t workers = 0;
  std::string database_url = "postgresql://postgres@127.0.0.1:5432/llmgw";
  RedisEndpoint redis;
  std::string redis_prefix = "llmgw:";
  std::string admin_key;
  std::string encryption_key;  // 32 raw bytes, decoded from base64 or hex
  LogLevel log_level = LogLevel::info;

  // Client side
  std::size_t max_body_bytes = 10 * 1024 * 1024;
  std::size_t max_header_bytes = 64 * 1024;
  Seconds header_timeout{10};
  Seconds body_timeout{30};
  Seconds keepalive_timeout{75};
  Seconds shutdown_grace{30};
  // After SIGTERM, how long the gateway keeps accepting and answering, with /health/ready 503 and
  // keep-alive off, so load balancers take it out of rotation before it stops listening.
  Seconds shutdown_delay{0};
  std::size_t max_connections = 20000;                  // lowered at start to what RLIMIT_NOFILE allows
  std::size_t max_buffered_body_bytes = 256 << 20;      // all request bodies held at once, process-wide

  // Upstream side
  Seconds upstream_connect_timeout{10};
  Seconds upstream_first_byte_timeout{600};
  Seconds upstream_idle_timeout{300};
  // Per worker. 0: no cap (a host's connections are bounded by MAX_CONNECTIONS).
  std::size_t upstream_max_conns_per_host = 0;
  std::size_t upstream_max_idle_per_host = 256;
  // At that cap, how long a request waits for a free connection (FIFO per host); 0: refused at once.
  Seconds upstream_queue_timeout{5};
  std::string upstream_ca_file;  // extra CA bundle (tests, private CAs); system store always used

  // Failover: a route that failed this many times within the window is skipped for the cooldown.
  int route_cooldown_failures = 3;
  Seconds route_cooldown_window{30};
  Seconds route_cooldown{30};
  // GET /metrics: open when empty, else Bearer this token.
  std::string metrics_token;
  // Days of request logs kept in PostgreSQL (older daily partitions are dropped).
  int log_retention_days = 30;
  // Request-log rows waiting for the batch writer; beyond, rows are dropped (and counted).
  std::size_t log_queue_max = 20000;
  // The writer sends a batch when this many rows wait or when the oldest has waited log_flush_ms.
  // Smaller batches spread PostgreSQL's work (and the writer's) into shorter bursts.
  std::size_t log_batch_max = 1000;
  int log_flush_ms = 250;

  // Rate limits: a running request's parallel slot and budget reservation last this long unless
  // renewed (its replica renews them; a dead replica's expire). The offset shifts the limiter's
  // clock (Redis TIME + offset): for tests of windows and midnight only.
  Seconds limit_lease{60};
  std::int64_t limit_clock_offset_ms = 0;

  // How long the gateway remembers where a Responses API object was created.
  Seconds responses_ttl{30 * 24 * 3600};

  // Dependencies
  std::size_t db_pool_size = 4;
  Seconds db_timeout{5};
  Seconds redis_timeout{0.5};
};

using EnvLookup = std::function<const char*(const char*)>;

// Every problem is reported, not just the first; messages name the variable.
struct ConfigErrors {
  std::vector<std::string> messages;
};

// Returns the config, or all problems found.
std::variant<Config, ConfigErrors> parse_config(const EnvLookup& env);

// Text for --help: every variable, its default and meaning.
std::string config_help();

// The CPUs a process may keep busy: `affinity` (CPUs it may run on), lowered to a cgroup v2 CPU
// quota given as the text of cpu.max ("max 100000", "250000 100000": 2.5 -> 3). At least 1.
std::size_t usable_cpus(std::size_t affinity, std::string_view cpu_max) noexcept;

// Decodes a 32-byte key given as 64 hex chars or base64 (standard or url-safe).
std::optional<std::string> decode_key32(std::string_view text);

}  // namespace core
