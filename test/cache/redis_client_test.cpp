#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "cache/redis_protocol.hpp"
#include "test/cache/redis_fixture.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <random>
#include <thread>

using namespace test_redis;

// The encoder is ours; hiredis's redisFormatCommandArgv is the reference it must match byte for byte.
TEST_CASE("encode_command writes what hiredis writes") {
  std::mt19937 rng(7);
  auto reference = [](const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
    REQUIRE(n > 0);
    std::string out(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    return out;
  };
  std::string all, expected;  // several commands appended to one buffer, as the client does
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::string> args(1 + rng() % 20);
    for (auto& a : args) {
      // Mostly short, sometimes empty or long (lengths of 1 to 5 digits); any byte, CR and LF included.
      const std::size_t len = rng() % 8 == 0 ? rng() % 20'000 : rng() % 40;
      for (std::size_t j = 0; j < len; ++j) a.push_back(static_cast<char>(rng() % 256));
    }
    std::string one;
    cache::encode_command(args, one);
    CHECK(one == reference(args));
    cache::encode_command(args, all);
    expected += reference(args);
  }
  CHECK(all == expected);
  std::string empty_arg;
  cache::encode_command({"GET", ""}, empty_arg);
  CHECK(empty_arg == "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

// CommandWriter writes in place what encode_command writes for the same arguments.
TEST_CASE("CommandWriter writes what encode_command writes") {
  std::mt19937 rng(11);
  cache::EncodedCommands written;
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    const std::size_t n = 1 + rng() % 12;
    std::vector<std::string> args;
    cache::CommandWriter w(written, n);
    for (std::size_t k = 0; k < n; ++k) {
      switch (rng() % 3) {
        case 0: {  // a number, negative ones and int64's ends included
          const std::int64_t v = rng() % 10 == 0 ? (rng() % 2 ? INT64_MIN : INT64_MAX)
                                                 : static_cast<std::int64_t>(rng()) - (1LL << 31);
          w.arg(v);
          args.push_back(std::to_string(v));
          break;
        }
        case 1: {  // one argument made of up to four parts, any of them empty
          std::string parts[4];
          for (auto& p : parts)
            for (std::size_t j = rng() % 6; j > 0; --j) p.push_back(static_cast<char>(rng() % 256));
          w.arg_parts({parts[0], parts[1], parts[2], parts[3]});
          args.push_back(parts[0] + parts[1] + parts[2] + parts[3]);
          break;
        }
        default: {
          std::string a;
          for (std::size_t j = rng() % 30; j > 0; --j) a.push_back(static_cast<char>(rng() % 256));
          w.arg(a);
          args.push_back(a);
        }
      }
    }
    cache::encode_command(args, expected);
  }
  CHECK(written.count == 2000);
  CHECK(written.bytes == expected);
}

TEST_CASE("basic commands and reply types") {
  Fixture f;
  auto opts = f.options();
  opts.host = "localhost";  // by name, through the resolver
  f.make_client(opts);
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));

    auto set = co_await cmd(c, "SET", "k", "v");
    REQUIRE(set);
    CHECK(set->type == Reply::Type::status);
    CHECK(set->str == "OK");
    auto get = co_await cmd(c, "GET", "k");
    REQUIRE(get);
    CHECK(get->type == Reply::Type::string);
    CHECK(get->str == "v");

    const std::string binary("a\0b\r\nc", 6);  // arguments and replies are binary safe
    CO_REQUIRE(co_await cmd(c, "SET", "bin", binary));
    auto bin = co_await cmd(c, "GET", "bin");
    REQUIRE(bin);
    CHECK(bin->str == binary);

    CO_REQUIRE(co_await cmd(c, "SADD", "set", "member"));
    auto yes = co_await cmd(c, "SISMEMBER", "set", "member");
    auto no = co_await cmd(c, "SISMEMBER", "set", "other");
    REQUIRE((yes && no));
    CHECK(yes->type == Reply::Type::integer);
    CHECK(yes->integer == 1);
    CHECK(no->integer == 0);

    auto nil = co_await cmd(c, "HGET", "hash", "field");
    REQUIRE(nil);
    CHECK(nil->type == Reply::Type::nil);

    auto wrong = co_await cmd(c, "HGET", "set", "field");
    REQUIRE(wrong);  // a Redis error is a reply, not a transport failure
    CHECK(wrong->type == Reply::Type::error);
    CHECK(wrong->str.rfind("WRONGTYPE", 0) == 0);

    CO_REQUIRE(co_await cmd(c, "RPUSH", "list", "a", "b"));
    auto list = co_await cmd(c, "LRANGE", "list", "0", "-1");
    REQUIRE(list);
    REQUIRE(list->type == Reply::Type::array);
    REQUIRE(list->elements.size() == 2);
    CHECK(list->elements[1].str == "b");

    Args nothing;  // named: a braced temporary inside co_await is freed twice by GCC 12
    auto empty = co_await c.command(std::move(nothing));
    REQUIRE(!empty);
    CHECK(empty.error().code == core::errc::internal);
    auto ping = co_await cmd(c, "PING");  // still in sync after all of the above
    REQUIRE(ping);
    CHECK(ping->str == "PONG");
  };
  f.run(body);
}

// A blocking GET on a connection of its own: what Redis holds right now, whatever our client's
// event loop has or has not run.
std::string raw_get(uint16_t port, const std::string& key) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  auto a = loopback(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string req = "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  std::string reply;
  char buf[256];
  while (reply.find("\r\n") == std::string::npos ||
         (reply[0] == '$' && reply != "$-1\r\n" && std::count(reply.begin(), reply.end(), '\n') < 2)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST_CASE("send() puts a command on the wire at once, before the caller yields to the loop") {
  // The gateway queues a budget's reconcile just before writing an answer's last bytes; a client
  // that then asks (any replica, any worker) must find it counted. So the command may not wait
  // for the writer coroutine's turn on the event loop.
  Fixture f;
  f.make_client(f.options());
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    std::vector<std::vector<std::string>> set{{"SET", "reconciled", "yes"}};
    REQUIRE(c.send(set, nullptr));
    std::this_thread::sleep_for(20ms);  // blocks the loop: no coroutine of ours runs meanwhile
    CHECK(raw_get(f.port, "reconciled") == "$3\r\nyes\r\n");
    co_return;
  };
  f.run(body);
}

TEST_CASE("pipelined replies stay in order") {
  Fixture f;
  auto opts = f.options();
  opts.command_timeout = 5s;
  f.make_client(opts);
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));

    std::vector<Args> cmds;
    for (int i = 0; i < 1000; ++i)
      cmds.push_back(i % 2 ? Args{"INCR", "counter"} : Args{"ECHO", std::to_string(i)});
    auto replies = co_await c.pipeline(std::move(cmds));
    REQUIRE(replies);
    REQUIRE(replies->size() == 1000);
    bool ordered = true;
    for (int i = 0; i < 1000; ++i) {
      const auto& r = (*replies)[i];
      ordered = ordered && (i % 2 ? r.integer == (i + 1) / 2 : r.str == std::to_string(i));
    }
    CHECK(ordered);

    // 1000 independent callers in flight at once: each must get its own reply.
    int matched = 0, finished = 0;
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 1000; ++i) {
      auto one = [&c, &matched, i]() -> asio::awaitable<void> {
        auto r = co_await cmd(c, "ECHO", std::to_string(i));
        if (r && r->str == std::to_string(i)) ++matched;
      };
      auto count = [&finished](std::exception_ptr) { ++finished; };
      asio::co_spawn(ex, one, count);
    }
    auto all_finished = [&] { return finished == 1000; };
    CO_REQUIRE(co_await eventually(all_finished));
    CHECK(matched == 1000);
  };
  f.run(body);
}

TEST_CASE("too many pending commands is overloaded") {
  Fixture f;
  auto opts = f.options();
  opts.max_pending = 10;
  f.make_client(opts);
  auto body = [&]() -> asio::awaitable<void> {
    CO_REQUIRE(co_await f.client->wait_connected(2s));
    const Args ping{"PING"};
    auto r = co_await f.client->pipeline(std::vector<Args>(11, ping));
    REQUIRE(!r);
    CHECK(r.error().code == core::errc::overloaded);
    CO_CHECK(co_await f.client->pipeline(std::vector<Args>(10, ping)));
  };
  f.run(body);
}

TEST_CASE("unavailable redis fails fast or at the deadline") {
  Fixture f;
  f.make_client(f.options());  // command_timeout 300ms
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));

    // Hung server: the command waits out its deadline, then the client gives up on the connection.
    f.server.pause();
    auto start = Clock::now();
    auto hung = co_await cmd(c, "GET", "k");
    auto took = Clock::now() - start;
    REQUIRE(!hung);
    CHECK(hung.error().code == core::errc::cache_unavailable);
    CHECK(took >= 250ms);
    CHECK(took < 800ms);
    auto disconnected = [&] { return !c.connected(); };
    CO_CHECK(co_await eventually(disconnected, 2s));
    f.server.resume();
    CO_REQUIRE(co_await c.wait_connected(5s));
    CO_CHECK(co_await cmd(c, "PING"));

    // Dead server: not connected, so commands fail at once.
    f.server.stop();
    CO_REQUIRE(co_await eventually(disconnected, 2s));
    start = Clock::now();
    auto dead = co_await cmd(c, "GET", "k");
    REQUIRE(!dead);
    CHECK(dead.error().code == core::errc::cache_unavailable);
    CHECK(Clock::now() - start < 100ms);
    CO_CHECK(!co_await c.wait_connected(300ms));
  };
  f.run(body);
}

TEST_CASE("reconnects after a restart and fires on_connected again") {
  Fixture f;
  int connects = 0;
  f.client = std::make_shared<cache::RedisClient>(f.io.get_executor(), f.options());
  f.client->on_connected([&] { ++connects; });
  f.client->start();
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    CHECK(connects == 1);
    CO_REQUIRE(co_await cmd(c, "SET", "k", "v"));

    f.server.stop();
    auto disconnected = [&] { return !c.connected(); };
    CO_REQUIRE(co_await eventually(disconnected, 2s));
    f.server.start();
    auto reconnected = [&] { return connects == 2; };
    CO_REQUIRE(co_await eventually(reconnected, 5s));
    CHECK(c.connected());
    auto get = co_await cmd(c, "GET", "k");  // a fresh server: the key is gone
    REQUIRE(get);
    CHECK(get->type == Reply::Type::nil);
  };
  f.run(body);
}

TEST_CASE("subscriber receives messages and reports resubscribes") {
  Fixture f;
  f.make_client(f.options());
  std::vector<std::string> messages;
  int resubscribed = 0;
  auto on_message = [&](std::string_view m) { messages.emplace_back(m); };
  auto on_resubscribed = [&] { ++resubscribed; };
  f.subscriber = std::make_shared<cache::RedisSubscriber>(f.io.get_executor(), f.options(), "invalidate",
                                                          on_message, on_resubscribed);
  f.subscriber->start();
  auto body = [&]() -> asio::awaitable<void> {
    auto& c = *f.client;
    CO_REQUIRE(co_await c.wait_connected(2s));
    auto subscribed_once = [&] { return resubscribed == 1; };
    CO_REQUIRE(co_await eventually(subscribed_once));
    CHECK(f.subscriber->subscribed());

    auto receivers = co_await cmd(c, "PUBLISH", "invalidate", "key:1");
    REQUIRE(receivers);
    CHECK(receivers->integer == 1);
    CO_CHECK(co_await cmd(c, "PUBLISH", "other-channel", "ignored"));
    auto got_one = [&] { return messages.size() == 1; };
    CO_REQUIRE(co_await eventually(got_one));
    CHECK(messages[0] == "key:1");

    f.server.stop();
    f.server.start();
    auto subscribed_twice = [&] { return resubscribed == 2 && f.client->connected(); };
    CO_REQUIRE(co_await eventually(subscribed_twice));
    CO_REQUIRE(co_await cmd(c, "PUBLISH", "invalidate", "key:2"));
    auto got_two = [&] { return messages.size() == 2; };
    CO_REQUIRE(co_await eventually(got_two));
    CHECK(messages[1] == "key:2");

    // A hung server sends no reset: only the subscriber's PING heartbeat can notice it.
    f.server.pause();
    auto unsubscribed = [&] { return !f.subscriber->subscribed(); };
    CO_REQUIRE(co_await eventually(unsubscribed, 5s));
    f.server.resume();
    auto subscribed_thrice = [&] { return resubscribed == 3; };
    CO_REQUIRE(co_await eventually(subscribed_thrice));
    CHECK(messages.size() == 2);
  };
  f.run(body);
}
