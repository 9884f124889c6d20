#include "core/log.hpp"

#include "core/json_write.hpp"
#include "core/thread_name.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include <fmt/format.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

namespace core::log {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};

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

// Writes `v` as exactly `width` decimal digits (zero-padded) into p.
void put_digits(char* p, std::int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// 2026-11-25T10:04:05.123456Z. The date and time up to the second are formatted once per second
// per thread (gmtime_r takes a lock for the time zone on some libcs; this is every line).
void append_timestamp(std::string& out) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::int64_t us_total = duration_cast<microseconds>(now.time_since_epoch()).count();
  const std::int64_t secs = us_total / 1000000;
  const std::int64_t us = us_total % 1000000;
  thread_local std::int64_t cached_sec = -1;
  thread_local char prefix[20];  // YYYY-MM-DDTHH:MM:SS
  if (secs != cached_sec) {
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    put_digits(prefix, tm.tm_year + 1900, 4);
    prefix[4] = '-';
    put_digits(prefix + 5, tm.tm_mon + 1, 2);
    prefix[7] = '-';
    put_digits(prefix + 8, tm.tm_mday, 2);
    prefix[10] = 'T';
    put_digits(prefix + 11, tm.tm_hour, 2);
    prefix[13] = ':';
    put_digits(prefix + 14, tm.tm_min, 2);
    prefix[16] = ':';
    put_digits(prefix + 17, tm.tm_sec, 2);
    prefix[19] = '.';
    cached_sec = secs;
  }
  char tail[7];
  put_digits(tail, us, 6);
  tail[6] = 'Z';
  out.append(prefix, sizeof prefix).append(tail, sizeof tail);
}

// A field's value, written straight into the line (one line per request: no string per value).
void append_value(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      json_write::append_string(out, std::string_view(s.data(), s.size()));
      return;
    }
    case boost::json::kind::int64:
      json_write::append_int(out, v.get_int64());
      return;
    case boost::json::kind::uint64:
      fmt::format_to(std::back_inserter(out), "{}", v.get_uint64());
      return;
    // Boost.JSON prints doubles as 2.402E0; durations read better as 2.402.
    case boost::json::kind::double_:
      if (std::isfinite(v.get_double()))
        fmt::format_to(std::back_inserter(out), "{:.3f}", v.get_double());
      else
        out.append("null");
      return;
    case boost::json::kind::bool_:
      out.append(v.get_bool() ? "true" : "false");
      return;
    case boost::json::kind::null:
      out.append("null");
      return;
    default:
      out.append(boost::json::serialize(v));
      return;  // arrays, objects: rare
  }
}

void append_head(std::string& text, LogLevel level, std::string_view msg) {
  text.append(R"({"ts":")");
  append_timestamp(text);
  text.append(R"(","level":")").append(level_name(level)).append(R"(","msg":)");
  json_write::append_string(text, msg);
}

std::string format_line(LogLevel level, std::string_view msg, const boost::json::object& fields) {
  std::string text;
  text.reserve(512);
  append_head(text, level, msg);
  for (const auto& kv : fields) {
    text.push_back(',');
    json_write::append_string(text, std::string_view(kv.key().data(), kv.key().size()));
    text.push_back(':');
    append_value(text, kv.value());
  }
  text.append("}\n");
  return text;
}

std::atomic<std::uint64_t> g_dropped{0};
std::atomic<std::uint64_t> g_written{0};
std::atomic<std::size_t> g_pending{0};

// Writes all of [p, p + n) to fd: retries partial writes and EINTR, waits out EAGAIN (a
// non-blocking fd). Returns how much was written: less than n only on another error.
std::size_t write_all(int fd, const char* p, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd, p + done, n - done);
    if (w > 0) {
      done += static_cast<std::size_t>(w);
      g_written.fetch_add(static_cast<std::uint64_t>(w), std::memory_order_relaxed);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd, POLLOUT, 0};
      if (::poll(&pfd, 1, -1) >= 0 || errno == EINTR) continue;
    }
    break;  // EPIPE, EBADF, ENOSPC, ...: what is left is lost
  }
  return done;
}

// Lines (whole or partly) in [from, to) of text that were not written: counted as dropped.
void count_lost(std::string_view text, std::size_t from, std::size_t to) {
  if (from >= to) return;
  const auto lost = std::count(text.begin() + static_cast<std::ptrdiff_t>(from),
                               text.begin() + static_cast<std::ptrdiff_t>(to), '\n');
  g_dropped.fetch_add(static_cast<std::uint64_t>(lost), std::memory_order_relaxed);
}

enum class Mode {
  unstarted,  // the first line starts the writer
  async,      // the writer thread runs (or, after a stop() that timed out, finishes on its own)
  sync,       // stopped: callers write their lines themselves
};

constexpr std::chrono::milliseconds kIdleInterval{50};

struct State {
  std::mutex mu;                     // guards everything below except `thread`
  std::condition_variable wake;      // the writer waits here
  std::condition_variable progress;  // flush() and stop() wait here
  Mode mode = Mode::unstarted;
  WriterOptions opts;
  std::string front;             // appended lines, not yet taken by the writer
  std::size_t inflight = 0;      // bytes the writer is writing now
  std::uint64_t appended = 0;    // bytes ever appended to front
  std::uint64_t completed = 0;   // of those, bytes written (or lost to a write error)
  std::uint64_t unreported = 0;  // lines dropped (buffer full) and not yet announced
  bool urgent = false;           // write now: flush(), an error line
  bool stopping = false;
  bool exited = false;  // the writer thread returned
  bool at_exit_registered = false;

  std::mutex control;  // serializes start() and stop(); guards `thread`
  std::thread thread;

  std::mutex sync_mu;  // one synchronous line at a time (mode sync)

  void publish_pending() { g_pending.store(front.size() + inflight, std::memory_order_relaxed); }
};

// Never destroyed: lines logged from static destructors, or by a writer thread left behind by a
// stop() that timed out, still find it.
State& state() {
  static State* s = new State;
  return *s;
}

void writer_loop(State& s) {
  // Signals go to the other threads (a handler here would only interrupt write(2)).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::string back;
  back.reserve(2 * s.opts.flush_bytes);
  std::unique_lock lk(s.mu);
  const auto interval = s.opts.interval;
  const auto flush_bytes = s.opts.flush_bytes;
  const int fd = s.opts.fd;
  auto tick = interval;
  for (;;) {
    s.wake.wait_for(lk, tick, [&] { return s.stopping || s.urgent || s.front.size() >= flush_bytes; });
    s.urgent = false;
    if (s.front.empty() && s.unreported == 0) {
      if (s.stopping) break;
      tick = std::min(2 * tick, std::max(interval, kIdleInterval));  // idle: wake up less often
      continue;
    }
    tick = interval;
    back.swap(s.front);
    const std::size_t caller_bytes = back.size();
    const std::uint64_t batch_end = s.appended;
    const std::uint64_t dropped = s.unreported;
    s.unreported = 0;
    s.inflight = caller_bytes;
    s.publish_pending();
    lk.unlock();

    // Lines were dropped after every line in this batch (the buffer was full): say so after them.
    if (dropped > 0) back.append(format_line(LogLevel::warn, "log lines dropped", {{"count", dropped}}));
    const std::size_t done = write_all(fd, back.data(), back.size());
    count_lost(back, done, caller_bytes);
    if (back.capacity() > 4 * flush_bytes + 1024 * 1024) {
      std::string().swap(back);  // a burst grew it: give the memory back
      back.reserve(2 * flush_bytes);
    }
    back.clear();

    lk.lock();
    s.inflight = 0;
    s.completed = batch_end;
    s.publish_pending();
    s.progress.notify_all();
  }
  s.mode = Mode::sync;
  s.exited = true;
  s.progress.notify_all();
}

void sync_write(State& s, int fd, std::string_view line) {
  std::lock_guard lk(s.sync_mu);
  const std::size_t done = write_all(fd, line.data(), line.size());
  count_lost(line, done, line.size());
}

// The default sink. Appends to the writer's buffer; starts the writer on the first line.
void emit(std::string_view line, bool urgent) {
  State& s = state();
  for (;;) {
    std::unique_lock lk(s.mu);
    if (s.mode == Mode::async) {
      const std::size_t before = s.front.size();
      if (before + s.inflight + line.size() > s.opts.max_pending) {
        ++s.unreported;
        g_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      s.front.append(line);
      s.appended += line.size();
      s.publish_pending();
      // Wake the writer only when crossing the threshold (it wakes up on its own otherwise).
      const bool crossed = before < s.opts.flush_bytes && s.front.size() >= s.opts.flush_bytes;
      if (urgent) s.urgent = true;
      lk.unlock();
      if (crossed || urgent) s.wake.notify_one();
      return;
    }
    if (s.mode == Mode::sync) {
      const int fd = s.opts.fd;
      lk.unlock();
      sync_write(s, fd, line);
      return;
    }
    lk.unlock();
    start();  // sets the mode: async, or sync when no thread can be started
  }
}

void stop_at_exit() {
  stop(std::chrono::seconds(2));
}

std::atomic<Sink> g_sink{nullptr};  // nullptr: emit()

}  // namespace

void set_sink(Sink sink) noexcept {
  g_sink = sink;
}

void set_level(LogLevel level) noexcept {
  g_level = level;
}
bool enabled(LogLevel level) noexcept {
  return level >= g_level.load(std::memory_order_relaxed);
}

namespace {
void deliver(LogLevel level, std::string_view text) {
  if (const Sink sink = g_sink.load(std::memory_order_relaxed))
    sink(text);
  else
    emit(text, level == LogLevel::error);
}

// Each thread's Line text buffer, lent to one Line at a time (a Line built while another is open
// on the same thread, which nothing does, would get a fresh string).
thread_local std::string t_line_buffer;
}  // namespace

void write(LogLevel level, std::string_view msg, boost::json::object fields) {
  if (!enabled(level)) return;
  deliver(level, format_line(level, msg, fields));
}

Line::Line(LogLevel level, std::string_view msg) : level_(level) {
  text_.swap(t_line_buffer);
  text_.clear();
  if (text_.capacity() < 512) text_.reserve(512);
  append_head(text_, level, msg);
}

Line::~Line() {
  if (text_.capacity() <= 16 * 1024) {  // an outsized line's buffer is not kept
    text_.clear();
    t_line_buffer.swap(text_);
  }
}

char Line::lead() {
  const char lead = first_in_nest_ ? '\0' : ',';
  first_in_nest_ = false;
  return lead;
}

void Line::key(std::string_view k) {
  const char l = lead();
  if (k.empty()) {  // an array element
    if (l != '\0') text_.push_back(l);
    return;
  }
  json_write::append_key(text_, l, k);
}

Line& Line::str(std::string_view k, std::string_view value) {
  if (k.empty()) {
    key(k);
    json_write::append_string(text_, value);
  } else {
    json_write::append_member(text_, lead(), k, value);
  }
  return *this;
}

Line& Line::num(std::string_view k, std::int64_t value) {
  if (k.empty()) {
    key(k);
    json_write::append_int(text_, value);
  } else {
    json_write::append_member(text_, lead(), k, value);
  }
  return *this;
}

Line& Line::millis(std::string_view k, std::int64_t micros) {
  key(k);
  json_write::append_fixed3(text_, micros);  // what fmt's {:.3f} prints for micros / 1000.0
  return *this;
}

Line& Line::real(std::string_view k, double value) {
  key(k);
  json_write::append_double(text_, value);
  return *this;
}

Line& Line::open(std::string_view k, char bracket) {
  key(k);
  text_.push_back(bracket);
  first_in_nest_ = true;
  return *this;
}

Line& Line::close(char bracket) {
  text_.push_back(bracket);
  first_in_nest_ = false;
  return *this;
}

void Line::write() {
  if (!enabled(level_)) return;
  text_.append("}\n");
  deliver(level_, text_);
}

bool start(const WriterOptions& options) {
  State& s = state();
  std::lock_guard control(s.control);
  {
    std::lock_guard lk(s.mu);
    if (s.mode == Mode::async) return false;
    if (!s.at_exit_registered) {
      s.at_exit_registered = true;
      std::atexit(stop_at_exit);
    }
    s.opts = options;
    s.opts.flush_bytes = std::max<std::size_t>(s.opts.flush_bytes, 1);
    s.opts.interval = std::max(s.opts.interval, std::chrono::milliseconds(1));
    s.front.clear();
    s.front.reserve(2 * s.opts.flush_bytes);
    s.inflight = 0;
    s.appended = s.completed = 0;
    s.unreported = 0;
    s.urgent = s.stopping = s.exited = false;
    s.mode = Mode::async;
  }
  if (s.thread.joinable()) s.thread.join();  // cannot happen (stop() joins or detaches): be safe
  try {
    s.thread = std::thread([&s] {
      name_this_thread("llmgw-stdout");
      writer_loop(s);
    });
  } catch (const std::system_error&) {
    std::lock_guard lk(s.mu);
    s.mode = Mode::sync;  // no thread: write synchronously rather than buffer forever
    return false;
  }
  return true;
}

bool flush(std::chrono::milliseconds timeout) {
  State& s = state();
  std::unique_lock lk(s.mu);
  if (s.mode != Mode::async || s.exited) return true;
  const std::uint64_t target = s.appended;
  if (s.completed >= target) return true;
  s.urgent = true;
  s.wake.notify_one();
  return s.progress.wait_for(lk, timeout, [&] { return s.completed >= target || s.exited; });
}

bool stop(std::chrono::milliseconds timeout) {
  State& s = state();
  std::lock_guard control(s.control);
  std::unique_lock lk(s.mu);
  if (s.mode == Mode::unstarted) s.mode = Mode::sync;
  if (!s.thread.joinable()) return s.mode == Mode::sync;  // not started, or a stuck writer left alone
  s.stopping = true;
  s.wake.notify_one();
  const bool done = s.progress.wait_for(lk, timeout, [&] { return s.exited; });
  lk.unlock();
  if (done)
    s.thread.join();
  else
    s.thread.detach();  // blocked in write(2): it finishes (and switches to sync) if it ever can
  return done;
}

std::uint64_t dropped_lines() noexcept {
  return g_dropped.load(std::memory_order_relaxed);
}
std::uint64_t written_bytes() noexcept {
  return g_written.load(std::memory_order_relaxed);
}
std::size_t pending_bytes() noexcept {
  return g_pending.load(std::memory_order_relaxed);
}

}  // namespace core::log
