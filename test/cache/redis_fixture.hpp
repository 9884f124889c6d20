#pragma once
// A throwaway redis-server per test and a client on an io_context, for the cache/ integration tests.
#include "cache/redis_client.hpp"
#include <catch2/catch.hpp>
#include "cache/redis_subscriber.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace test_redis {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cache::Reply;
using Clock = std::chrono::steady_clock;

inline sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Binding port 0 lets the kernel pick a port nobody uses right now.
inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(0);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool port_open(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A throwaway redis-server child process. PR_SET_PDEATHSIG kills it even if the test itself crashes.
class RedisServer {
 public:
  explicit RedisServer(uint16_t port) : port_(port) { start(); }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void start() {
    const auto port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, STDOUT_FILENO);
      ::execl(REDIS_SERVER_BIN, "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--daemonize", "no", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto until = Clock::now() + 5s;
    while (!port_open(port_) && Clock::now() < until) std::this_thread::sleep_for(10ms);
    REQUIRE(port_open(port_));
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

inline asio::awaitable<void> sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Polls until `cond` holds or `deadline` passes.
template <class Cond>
asio::awaitable<bool> eventually(Cond cond, std::chrono::milliseconds deadline = 5s) {
  const auto until = Clock::now() + deadline;
  while (!cond()) {
    if (Clock::now() > until) co_return false;
    co_await sleep(10ms);
  }
  co_return true;
}

struct Fixture {
  uint16_t port = free_port();
  RedisServer server{port};
  asio::io_context io;
  std::shared_ptr<cache::RedisClient> client;
  std::shared_ptr<cache::RedisSubscriber> subscriber;

  cache::RedisOptions options() const {
    cache::RedisOptions o;
    o.port = port;
    o.connect_timeout = 500ms;
    o.command_timeout = 300ms;
    return o;
  }
  void make_client(cache::RedisOptions o) {
    client = std::make_shared<cache::RedisClient>(io.get_executor(), std::move(o));
    client->start();
  }

  // Runs `body` to completion, then stops the client/subscriber. io.run_for() only returns early if every
  // coroutine has ended, so this also checks that stop() really ends them.
  template <class Body>
  void run(Body& body) {
    std::exception_ptr failure;
    bool done = false;
    auto on_done = [&](std::exception_ptr e) {
      failure = e;
      done = true;
      if (client) client->stop();
      if (subscriber) subscriber->stop();
    };
    asio::co_spawn(io, body(), on_done);
    io.run_for(60s);
    if (failure) std::rethrow_exception(failure);
    REQUIRE(done);
    REQUIRE(io.stopped());
  }
};

using Args = std::vector<std::string>;

// Catch's macros repeat their argument in an unevaluated branch, and GCC 12 still runs a co_await found
// there (each command would run three times), so an awaited condition is stored before it is checked.
#define CO_REQUIRE(...)                                 \
  do {                                                  \
    const bool co_ok_ = static_cast<bool>(__VA_ARGS__); \
    REQUIRE(co_ok_);                                    \
  } while (0)
#define CO_CHECK(...)                                   \
  do {                                                  \
    const bool co_ok_ = static_cast<bool>(__VA_ARGS__); \
    CHECK(co_ok_);                                      \
  } while (0)

// GCC 12 rejects or miscompiles an initializer list (of std::string) inside a co_await expression, so the
// argument vector is built here, in a plain function that returns the awaitable.
template <class... S>
asio::awaitable<core::Result<Reply>> cmd(cache::RedisClient& c, S&&... args) {
  return c.command(Args{std::string(std::forward<S>(args))...});
}

}  // namespace test_redis
