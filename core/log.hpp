#pragma once
// Structured logging: one JSON object per line on stdout. Callers never pass secrets here.
#include "core/config.hpp"

#include <boost/json/object.hpp>

#include <string_view>

namespace core::log {

void set_level(LogLevel level) noexcept;
// Where finished lines go (default: stdout). For tests; set before any other thread logs.
using Sink = void (*)(std::string_view line);
void set_sink(Sink sink) noexcept;
bool enabled(LogLevel level) noexcept;
// Adds "ts", "level" and "msg" to fields and writes the line atomically.
void write(LogLevel level, std::string_view msg, boost::json::object fields = {});

inline void info(std::string_view msg, boost::json::object f = {}) {
  write(LogLevel::info, msg, std::move(f));
}
inline void warn(std::string_view msg, boost::json::object f = {}) {
  write(LogLevel::warn, msg, std::move(f));
}
inline void error(std::string_view msg, boost::json::object f = {}) {
  write(LogLevel::error, msg, std::move(f));
}
inline void debug(std::string_view msg, boost::json::object f = {}) {
  if (enabled(LogLevel::debug)) write(LogLevel::debug, msg, std::move(f));
}

}  // namespace core::log
