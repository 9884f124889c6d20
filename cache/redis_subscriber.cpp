#include "cache/redis_subscriber.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

namespace cache {

namespace asio = boost::asio;

namespace {

using detail::use_tuple;

}  // namespace

RedisSubscriber::RedisSubscriber(asio::any_io_executor ex, RedisOptions opts, std::string channel,
                                 MessageHandler on_message, std::function<void()> on_resubscribed)
    : ex_(std::move(ex)),
      opts_(std::move(opts)),
      channel_(std::move(channel)),
      on_message_(std::move(on_message)),
      on_resubscribed_(std::move(on_resubscribed)),
      sock_(ex_),
      ping_timer_(ex_),
      backoff_(ex_) {}

void RedisSubscriber::start() {
  if (std::exchange(started_, true)) return;
  asio::co_spawn(ex_, run(shared_from_this()), asio::detached);
}

void RedisSubscriber::stop() {
  stopped_ = true;
  drop_connection();
  backoff_.cancel();
}

void RedisSubscriber::drop_connection() {
  subscribed_ = false;
  boost::system::error_code ignored;
  sock_.close(ignored);
  ping_timer_.cancel();
}

asio::awaitable<void> RedisSubscriber::run(std::shared_ptr<RedisSubscriber> self) {
  auto backoff = kMinBackoff;
  while (!stopped_) {
    ReplyParser parser;
    const bool ok = static_cast<bool>(co_await connect_redis(sock_, parser, opts_));
    if (stopped_) break;
    if (ok) {
      backoff = kMinBackoff;
      co_await listen(self, parser);
      drop_connection();
      if (stopped_) break;
    }
    backoff_.expires_after(backoff);
    co_await backoff_.async_wait(use_tuple);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

asio::awaitable<void> RedisSubscriber::listen(std::shared_ptr<RedisSubscriber> self, ReplyParser& parser) {
  std::string out;
  encode_command({"SUBSCRIBE", channel_}, out);
  auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(out), use_tuple);
  if (ec || stopped_) co_return;
  answered_ = true;
  asio::co_spawn(ex_, heartbeat(self, ++generation_), asio::detached);
  for (;;) {
    auto reply = co_await read_reply(sock_, parser);
    if (!reply || stopped_) co_return;
    answered_ = true;
    // In subscribed mode every reply is an array: [kind, channel, payload-or-count] or ["pong", ""].
    // Anything else (an error reply, e.g. an ACL denial) means this connection is of no use.
    if (reply->type != Reply::Type::array || reply->elements.empty()) co_return;
    const auto& e = reply->elements;
    if (e[0].str == "subscribe") {
      subscribed_ = true;
      if (on_resubscribed_) on_resubscribed_();
    } else if (e[0].str == "message" && e.size() == 3 && on_message_) {
      on_message_(e[2].str);
    }
  }
}

// A subscriber only ever reads, so a silently dead peer would go unnoticed forever. PING every
// interval; if nothing at all came back since the previous one, drop the connection.
asio::awaitable<void> RedisSubscriber::heartbeat(std::shared_ptr<RedisSubscriber> self,
                                                 std::uint64_t generation) {
  const auto interval = std::max(4 * opts_.command_timeout, std::chrono::milliseconds{1000});
  std::string ping;
  encode_command({"PING"}, ping);
  auto current = [&] { return generation == generation_ && !stopped_; };
  while (current()) {
    ping_timer_.expires_after(interval);
    co_await ping_timer_.async_wait(use_tuple);
    if (!current()) co_return;
    if (!std::exchange(answered_, false)) break;
    auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(ping), use_tuple);
    if (ec) break;
  }
  if (current()) drop_connection();  // the reader fails, run() reconnects
}

}  // namespace cache
