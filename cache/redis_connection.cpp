#include "cache/redis_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <memory>

namespace cache {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using detail::use_tuple;

using detail::unavailable;

}  // namespace

asio::awaitable<core::Result<Reply>> read_reply(tcp::socket& sock, ReplyParser& parser) {
  std::array<char, 16384> buf;
  for (;;) {
    auto next = parser.next();
    if (!next) co_return std::move(next).error();
    if (*next) co_return std::move(**next);
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), use_tuple);
    if (ec) co_return unavailable("redis connection lost");
    if (!parser.feed(buf.data(), n)) co_return unavailable("redis protocol error");
  }
}

asio::awaitable<core::Status> connect_redis(tcp::socket& sock, ReplyParser& parser, RedisOptions opts) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  // One deadline bounds every step: when it fires, cancelling the resolve and closing the socket makes
  // whatever step is in flight fail. `live` guards against an expiry already queued when we return.
  auto live = std::make_shared<bool>(true);
  asio::steady_timer deadline(ex, opts.connect_timeout);
  auto on_deadline = [live, &sock, &resolver](boost::system::error_code ec) {
    if (ec || !*live) return;
    resolver.cancel();
    boost::system::error_code ignored;
    sock.close(ignored);
  };
  deadline.async_wait(on_deadline);
  // On every exit: disarm the deadline, and leave no half-open connection behind on failure.
  struct Done {
    std::shared_ptr<bool> live;
    tcp::socket& sock;
    bool ok = false;
    ~Done() {
      *live = false;
      boost::system::error_code ignored;
      if (!ok) sock.close(ignored);
    }
  } done{live, sock};

  auto [rec, endpoints] = co_await resolver.async_resolve(opts.host, std::to_string(opts.port), use_tuple);
  if (rec) co_return unavailable("redis resolve failed");
  // Not asio::async_connect(range): after the deadline closes the socket it would reopen it for the
  // next address, with no deadline left.
  boost::system::error_code ignored, cec = asio::error::host_not_found;
  for (const auto& entry : endpoints) {
    if (asio::steady_timer::clock_type::now() >= deadline.expiry()) break;
    auto [ec] = co_await sock.async_connect(entry.endpoint(), use_tuple);
    if (!(cec = ec)) break;
    sock.close(ignored);
  }
  if (cec) co_return unavailable("redis connect failed");
  sock.set_option(tcp::no_delay(true), ignored);

  std::string out;
  int replies = 1;
  if (!opts.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!opts.username.empty()) auth.push_back(opts.username);
    auth.push_back(opts.password);
    encode_command(auth, out);
    ++replies;
  }
  if (opts.db != 0) {
    encode_command({"SELECT", std::to_string(opts.db)}, out);
    ++replies;
  }
  encode_command({"PING"}, out);
  auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(out), use_tuple);
  if (wec) co_return unavailable("redis connection lost");
  for (int i = 0; i < replies; ++i) {
    auto r = co_await read_reply(sock, parser);
    if (!r) co_return std::move(r).error();
    if (r->is_error()) co_return unavailable("redis handshake rejected");
  }
  done.ok = true;
  co_return core::ok();
}

}  // namespace cache
