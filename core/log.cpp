#include "core/log.hpp"

#include <boost/json/serialize.hpp>

#include <fmt/format.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace core::log {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};

void to_stdout(std::string_view line) {
  // One fwrite of a whole line is atomic enough across threads with glibc's stream lock.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}
std::atomic<Sink> g_sink{&to_stdout};

std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto us = duration_cast<microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

}  // namespace

void set_sink(Sink sink) noexcept {
  g_sink = sink ? sink : &to_stdout;
}

void set_level(LogLevel level) noexcept {
  g_level = level;
}
bool enabled(LogLevel level) noexcept {
  return level >= g_level.load(std::memory_order_relaxed);
}

void write(LogLevel level, std::string_view msg, boost::json::object fields) {
  if (!enabled(level)) return;
  std::string text;
  text.reserve(256);
  text.append(R"({"ts":")").append(timestamp()).append(R"(","level":")").append(level_name(level));
  text.append(R"(","msg":)").append(boost::json::serialize(boost::json::string_view(msg.data(), msg.size())));
  for (const auto& kv : fields) {
    text.push_back(',');
    text.append(boost::json::serialize(kv.key())).push_back(':');
    // Boost.JSON prints doubles as 2.402E0; durations read better as 2.402.
    if (kv.value().is_double())
      text.append(fmt::format("{:.3f}", kv.value().get_double()));
    else
      text.append(boost::json::serialize(kv.value()));
  }
  text.append("}\n");
  g_sink.load(std::memory_order_relaxed)(text);
}

}  // namespace core::log
