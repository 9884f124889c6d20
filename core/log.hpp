#pragma once
// Structured logging: one JSON object per line on stdout. Callers never pass secrets here.
//
// Lines go through an asynchronous writer: the caller formats its line and appends it to an
// in-memory buffer under a mutex (a memcpy, never a syscall); a background thread writes what has
// accumulated to fd 1 with write(2), every `interval` while lines arrive (backing off to 50 ms
// when idle), at once when `flush_bytes` are pending, when an error-level line arrives, or when
// flush() asks. At most `max_pending` bytes wait (buffered + being written): beyond that, new
// lines are dropped and counted, so a blocked stdout (a full pipe) never blocks a caller; once
// it can write again, the writer emits {"level":"warn","msg":"log lines dropped","count":N}.
//
// The writer starts on the first line (or with start()); a process that returns from main or
// calls exit() writes everything first (an atexit handler runs stop()). Before std::_Exit or
// abort, call flush(). After stop(), lines are written synchronously by the caller.
#include "core/config.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace core::log {

void set_level(LogLevel level) noexcept;
// Where finished lines go (default: the asynchronous stdout writer). For tests; set before any
// other thread logs. A custom sink gets each line synchronously, on the caller's thread.
using Sink = void (*)(std::string_view line);
void set_sink(Sink sink) noexcept;
bool enabled(LogLevel level) noexcept;
// Adds "ts", "level" and "msg" to fields and writes the line atomically (never interleaved).
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

// A line built field by field, straight into its text: for the per-request line, where building
// a boost::json::object (a hash insert per field) and then serializing it cost more than the rest
// of the line's work. Starts {"ts":…,"level":…,"msg":…; write() closes it and emits it like
// log::write. Keys are written as given (callers pass literals that need no escaping); values are
// escaped. The text buffer is reused across lines on the same thread.
class Line {
 public:
  Line(LogLevel level, std::string_view msg);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& str(std::string_view key, std::string_view value);
  Line& num(std::string_view key, std::int64_t value);
  // A duration in milliseconds with 3 decimals (2.402), from whole microseconds.
  Line& millis(std::string_view key, std::int64_t micros);
  // A double in its shortest round-trip form (costs of 0.000012 stay exact); NaN, inf: null.
  Line& real(std::string_view key, double value);
  // Opens `key: [` / `{` for nested values; the caller closes with close(']') / close('}').
  Line& open(std::string_view key, char bracket);
  Line& close(char bracket);
  // Closes the line and emits it. Once.
  void write();

 private:
  char lead();  // ',' before a member, none first in a nest
  void key(std::string_view k);
  LogLevel level_;
  std::string text_;
  bool first_in_nest_ = false;  // just after `[` or `{`: no comma before the next member
};

struct WriterOptions {
  int fd = 1;                                 // where lines go (tests: a pipe); not closed by stop()
  std::size_t flush_bytes = 64 * 1024;        // this much pending wakes the writer at once
  std::size_t max_pending = 8 * 1024 * 1024;  // bytes buffered or being written; beyond: dropped
  std::chrono::milliseconds interval{5};      // the longest a line waits while the writer is busy
};

// Starts the writer thread. False if one is already running (or a stopped one is still stuck in
// write(2)); stop() it first to change options. Optional: the first line starts it with defaults.
bool start(const WriterOptions& options = {});
// Blocks until every line appended before the call is written (or could not be: a write error),
// at most `timeout`. True when done; immediately true when no writer runs.
bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(2));
// flush(), then ends the writer thread: later lines are written synchronously by the caller, to
// the same fd. False when the writer did not finish within `timeout` (stdout blocked): it is then
// left to finish on its own, lines keep being buffered (or dropped) and nobody blocks.
bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(2));

// Process-wide, for /metrics. Each is read atomically; together they are not a snapshot.
std::uint64_t dropped_lines() noexcept;  // buffer full, or lost to a write(2) error
std::uint64_t written_bytes() noexcept;  // written to the fd (dropped-line notices included)
std::size_t pending_bytes() noexcept;    // buffered or being written now

}  // namespace core::log
