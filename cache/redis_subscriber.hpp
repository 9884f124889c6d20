#pragma once
// A dedicated connection SUBSCRIBEd to one channel (a subscribed connection cannot run other commands).
// Messages published while disconnected are lost, so every (re)subscribe is reported: the owner must
// then assume it missed invalidations (the gateway drops its in-process caches).
#include "cache/redis_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace cache {

class RedisSubscriber : public std::enable_shared_from_this<RedisSubscriber> {
 public:
  using MessageHandler = std::function<void(std::string_view message)>;

  // Both callbacks run on `ex`. opts.command_timeout paces the liveness PINGs.
  RedisSubscriber(boost::asio::any_io_executor ex, RedisOptions opts, std::string channel,
                  MessageHandler on_message, std::function<void()> on_resubscribed);

  // Connect, SUBSCRIBE, dispatch messages; reconnect with backoff (100ms doubling to 2s) on any
  // failure. The coroutines hold a shared_ptr to the subscriber until stop().
  void start();
  void stop();
  bool subscribed() const noexcept { return subscribed_; }

 private:
  boost::asio::awaitable<void> run(std::shared_ptr<RedisSubscriber> self);
  boost::asio::awaitable<void> listen(std::shared_ptr<RedisSubscriber> self, ReplyParser& parser);
  boost::asio::awaitable<void> heartbeat(std::shared_ptr<RedisSubscriber> self, std::uint64_t generation);
  void drop_connection();

  boost::asio::any_io_executor ex_;
  RedisOptions opts_;
  std::string channel_;
  MessageHandler on_message_;
  std::function<void()> on_resubscribed_;
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer ping_timer_, backoff_;
  std::uint64_t generation_ = 0;  // bumped per connection so a stale heartbeat knows to quit
  bool answered_ = false;         // anything received since the last PING
  bool subscribed_ = false;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace cache
