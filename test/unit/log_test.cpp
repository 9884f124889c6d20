#include "core/log.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace lg = core::log;
using namespace std::chrono_literals;

namespace {

struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
    ::fcntl(r, F_SETFL, ::fcntl(r, F_GETFL) | O_NONBLOCK);  // the read end only
  }
  ~Pipe() {
    close_w();
    ::close(r);
  }
  void close_w() {
    if (w >= 0) ::close(w);
    w = -1;
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

// Runs the writer on a pipe for one test; afterwards back to stdout with the default options.
struct OnPipe {
  Pipe pipe;
  explicit OnPipe(lg::WriterOptions o) {
    lg::stop();
    o.fd = pipe.w;
    REQUIRE(lg::start(o));
  }
  ~OnPipe() {
    lg::stop();
    lg::start();
  }
};

bool readable(int fd, std::chrono::milliseconds within) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(within.count())) == 1;
}

// What can be read now, without waiting.
std::string read_available(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Everything until every write end is closed.
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      readable(fd, 100ms);
    } else {
      break;
    }
  }
  return out;
}

// Each line parsed as one JSON object: an interleaved or cut line fails here.
std::vector<boost::json::object> parse_lines(const std::string& text) {
  std::vector<boost::json::object> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string::npos) FAIL("cut line at the end: " << text.substr(pos));
    boost::system::error_code ec;
    auto v = boost::json::parse(std::string_view(text).substr(pos, nl - pos), ec);
    if (ec || !v.is_object()) FAIL("not one JSON object: " << text.substr(pos, nl - pos));
    out.push_back(std::move(v.as_object()));
    pos = nl + 1;
  }
  return out;
}

std::string msg_of(const boost::json::object& o) {
  return std::string(o.at("msg").as_string());
}

std::vector<std::string> g_captured;
void capture(std::string_view line) {
  g_captured.emplace_back(line);
}

}  // namespace

TEST_CASE("log: lines from many threads arrive whole, in order, exactly once") {
  const auto dropped_before = lg::dropped_lines();
  OnPipe on({.max_pending = 256 * 1024 * 1024});  // no drops here, whatever the scheduling
  auto reader = std::async(std::launch::async, [fd = on.pipe.r] { return read_to_eof(fd); });

  constexpr int kThreads = 8;
  constexpr int kLines = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) lg::info("t", {{"thread", t}, {"seq", i}});
    });
  for (auto& th : threads) th.join();
  REQUIRE(lg::stop());
  on.pipe.close_w();
  const auto lines = parse_lines(reader.get());

  REQUIRE(lines.size() == std::size_t{kThreads} * kLines);
  std::vector<std::int64_t> next(kThreads, 0);
  std::size_t wrong = 0;  // checked by hand: 80,000 Catch assertions would take most of the time
  for (const auto& o : lines) {
    const auto t = static_cast<std::size_t>(o.at("thread").as_int64());
    if (o.at("msg").as_string() != "t" || o.at("level").as_string() != "info" || t >= next.size() ||
        o.at("seq").as_int64() != next[t]++)
      ++wrong;
  }
  CHECK(wrong == 0);
  for (auto n : next) CHECK(n == kLines);
  CHECK(lg::dropped_lines() == dropped_before);
}

TEST_CASE("log: flush() delivers everything appended before it") {
  OnPipe on({.flush_bytes = 1024 * 1024, .interval = std::chrono::hours(1)});  // only flush() writes
  const auto written_before = lg::written_bytes();
  for (int i = 0; i < 100; ++i) lg::info("f", {{"seq", i}});
  CHECK(read_available(on.pipe.r).empty());  // still buffered: no syscall per line
  CHECK(lg::pending_bytes() > 0);

  REQUIRE(lg::flush(2s));
  const auto text = read_available(on.pipe.r);
  const auto lines = parse_lines(text);
  REQUIRE(lines.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(lines[static_cast<std::size_t>(i)].at("seq").as_int64() == i);
  CHECK(lg::written_bytes() - written_before == text.size());
  CHECK(lg::pending_bytes() == 0);
  CHECK(lg::flush(0ms));  // nothing pending: at once
}

TEST_CASE("log: crossing flush_bytes, or an error line, wakes the writer") {
  OnPipe on({.flush_bytes = 4096, .interval = std::chrono::hours(1)});
  std::size_t bytes = 0;
  int i = 0;
  // Stay below the threshold: nothing is written.
  while (bytes + 200 < 4096) {
    lg::info("below", {{"seq", i++}});
    bytes = lg::pending_bytes();
  }
  CHECK_FALSE(readable(on.pipe.r, 50ms));
  // Until a line crosses it: pending grows until then; after, it is >= 4096 or already written.
  for (std::size_t prev = bytes;;) {
    lg::info("cross", {{"seq", i++}});
    const auto p = lg::pending_bytes();
    if (p >= 4096 || p <= prev) break;
    prev = p;
  }
  REQUIRE(readable(on.pipe.r, 2000ms));
  REQUIRE(lg::flush(2s));
  CHECK(parse_lines(read_available(on.pipe.r)).size() == static_cast<std::size_t>(i));

  lg::info("quiet");
  CHECK_FALSE(readable(on.pipe.r, 50ms));
  lg::error("loud", {{"code", 1}});
  REQUIRE(readable(on.pipe.r, 2000ms));
  std::string text;
  while (text.find("loud") == std::string::npos && readable(on.pipe.r, 2000ms))
    text += read_available(on.pipe.r);
  const auto lines = parse_lines(text);
  REQUIRE(lines.size() == 2);
  CHECK(msg_of(lines[0]) == "quiet");
  CHECK(msg_of(lines[1]) == "loud");
  CHECK(lines[1].at("level").as_string() == "error");
}

TEST_CASE("log: a blocked reader never blocks writers; dropped lines are counted, then announced") {
  const auto dropped_before = lg::dropped_lines();
  constexpr std::size_t kMaxPending = 256 * 1024;
  OnPipe on({.flush_bytes = 16 * 1024, .max_pending = kMaxPending, .interval = 1ms});

  // Nobody reads: the pipe fills (64 KiB), then the buffer; the writer thread is stuck in write(2).
  constexpr int kThreads = 4;
  constexpr int kLines = 5000;  // ~85 bytes each: far more than pipe + buffer hold
  const auto began = std::chrono::steady_clock::now();
  auto producers = std::async(std::launch::async, [] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([t] {
        for (int i = 0; i < kLines; ++i) lg::info("b", {{"thread", t}, {"seq", i}});
      });
    for (auto& th : threads) th.join();
  });
  const bool finished = producers.wait_for(5s) == std::future_status::ready;
  const auto took = std::chrono::steady_clock::now() - began;
  const auto dropped = lg::dropped_lines() - dropped_before;
  const auto pending = lg::pending_bytes();

  // Drain, whatever happened above, so that nothing stays blocked.
  auto reader = std::async(std::launch::async, [fd = on.pipe.r] { return read_to_eof(fd); });
  producers.wait();
  REQUIRE(finished);
  CHECK(took < 3s);
  REQUIRE(dropped > 0);
  CHECK(pending <= kMaxPending);
  REQUIRE(lg::stop());
  on.pipe.close_w();
  const auto lines = parse_lines(reader.get());

  std::uint64_t received = 0;
  std::uint64_t announced = 0;
  std::vector<std::int64_t> last(kThreads, -1);
  for (const auto& o : lines) {
    if (msg_of(o) == "log lines dropped") {
      CHECK(o.at("level").as_string() == "warn");
      announced += static_cast<std::uint64_t>(o.at("count").to_number<std::int64_t>());
      continue;
    }
    REQUIRE(msg_of(o) == "b");
    const auto t = static_cast<std::size_t>(o.at("thread").as_int64());
    const auto seq = o.at("seq").as_int64();
    REQUIRE(seq > last[t]);  // in order; gaps are the dropped lines
    last[t] = seq;
    ++received;
  }
  CHECK(received + dropped == std::uint64_t{kThreads} * kLines);
  CHECK(announced == dropped);
  CHECK(lg::dropped_lines() - dropped_before == dropped);
}

TEST_CASE("log: stop() writes everything; later lines are written synchronously") {
  OnPipe on({.interval = std::chrono::hours(1)});
  for (int i = 0; i < 200; ++i) lg::info("s", {{"seq", i}});  // ~17 KB: fits in the pipe
  REQUIRE(lg::stop());
  CHECK(lg::flush(0ms));
  lg::warn("after stop");  // no writer thread: the caller writes it
  const auto lines = parse_lines(read_available(on.pipe.r));
  REQUIRE(lines.size() == 201);
  for (int i = 0; i < 200; ++i) CHECK(lines[static_cast<std::size_t>(i)].at("seq").as_int64() == i);
  CHECK(msg_of(lines[200]) == "after stop");
  CHECK(lg::stop());  // again: nothing to do
}

TEST_CASE("log: level filtering; a custom sink gets lines synchronously") {
  g_captured.clear();
  lg::set_sink(&capture);
  lg::set_level(core::LogLevel::warn);
  CHECK_FALSE(lg::enabled(core::LogLevel::info));
  CHECK(lg::enabled(core::LogLevel::error));
  lg::debug("d");
  lg::info("i");
  lg::warn("w", {{"ms", 2.5}});
  lg::error("e");
  REQUIRE(g_captured.size() == 2);
  CHECK(g_captured[0].find(R"("level":"warn","msg":"w","ms":2.500})") != std::string::npos);
  CHECK(g_captured[1].find(R"("level":"error","msg":"e"})") != std::string::npos);
  CHECK(g_captured[1].back() == '\n');

  lg::set_level(core::LogLevel::debug);
  lg::debug("d2");
  CHECK(g_captured.size() == 3);
  lg::set_level(core::LogLevel::info);
  lg::debug("d3");
  lg::info("i2");
  REQUIRE(g_captured.size() == 4);
  CHECK(g_captured[3].find(R"("msg":"i2")") != std::string::npos);
  lg::set_sink(nullptr);
}

TEST_CASE("log: Line writes the same line a field object would, field by field") {
  g_captured.clear();
  lg::set_sink(&capture);
  {
    lg::Line line(core::LogLevel::info, "request");
    line.str("path", "/v1/chat \"x\"\n")
        .num("status", 200)
        .millis("duration_ms", 2402)
        .millis("small", 7)
        .millis("neg", -1500)
        .real("cost", 0.000012)
        .real("nan", std::nan(""));
    line.open("attempts", '[');
    line.open("", '{').str("provider", "a").num("status", 502).close('}');
    line.open("", '{').str("provider", "b").num("status", 200).close('}');
    line.close(']').open("empty", '[').close(']').str("after", "x");
    line.write();
  }
  REQUIRE(g_captured.size() == 1);
  const std::string& text = g_captured[0];
  CHECK(text.back() == '\n');
  const auto v = boost::json::parse(text).as_object();  // valid JSON, one object
  CHECK(v.at("msg").as_string() == "request");
  CHECK(v.at("level").as_string() == "info");
  CHECK(v.at("path").as_string() == "/v1/chat \"x\"\n");
  CHECK(text.find(
            R"("status":200,"duration_ms":2.402,"small":0.007,"neg":-1.500,"cost":1.2e-05,"nan":null,)") !=
        std::string::npos);
  CHECK(
      text.find(
          R"("attempts":[{"provider":"a","status":502},{"provider":"b","status":200}],"empty":[],"after":"x"})") !=
      std::string::npos);
  // ts: 2026-11-25T10:04:05.123456Z, the same shape as the object-built lines
  const auto ts = std::string(v.at("ts").as_string());
  REQUIRE(ts.size() == 27);
  CHECK(ts[4] == '-');
  CHECK(ts[10] == 'T');
  CHECK(ts[19] == '.');
  CHECK(ts[26] == 'Z');

  // The buffer is reused: a second line starts clean.
  lg::Line(core::LogLevel::warn, "second").num("n", 1).write();
  REQUIRE(g_captured.size() == 2);
  CHECK(g_captured[1].find(R"(,"level":"warn","msg":"second","n":1}
)") != std::string::npos);
  CHECK(g_captured[1].find("request") == std::string::npos);

  // Below the level: nothing.
  lg::set_level(core::LogLevel::error);
  lg::Line(core::LogLevel::info, "hidden").write();
  lg::set_level(core::LogLevel::info);
  CHECK(g_captured.size() == 2);
  lg::set_sink(nullptr);
}
