#pragma once
// Async Redis client: one pipelined connection owned by Asio, with per-command deadlines and automatic
// reconnect. Single executor only (an io_context thread or a strand); not thread-safe.
// Expected failures come back as core::Error, never as exceptions.
#include "cache/redis_connection.hpp"
#include "cache/redis_protocol.hpp"
#include "cache/redis_reply.hpp"
#include "core/histogram.hpp"
#include "core/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cache {

class RedisClient : public std::enable_shared_from_this<RedisClient> {
 public:
  RedisClient(boost::asio::any_io_executor ex, RedisOptions opts);

  // Spawns the connect loop: connect, then read replies; on any I/O error fail everything pending
  // with cache_unavailable and reconnect with backoff (100ms doubling to 2s). Its coroutines hold a
  // shared_ptr to the client, so it lives until stop().
  void start();
  // Closes the connection, fails pending commands and ends all coroutines.
  void stop();
  bool connected() const noexcept { return connected_; }

  // One command. Not connected, transport failure or deadline (opts.command_timeout) ->
  // errc::cache_unavailable; too many commands in flight -> errc::overloaded. A Redis error reply is
  // a value: Reply{Type::error}.
  boost::asio::awaitable<core::Result<Reply>> command(std::vector<std::string> args);
  // Several commands in one write, replies in order, one deadline for all.
  boost::asio::awaitable<core::Result<std::vector<Reply>>> pipeline(
      std::vector<std::vector<std::string>> cmds);
  // Queues commands at once, before the caller's next step, without waiting for their replies: for
  // writes that must reach Redis ahead of anything the caller does next on this connection.
  // `on_replies`, if set, gets the replies (on the executor; never when the connection is lost or
  // they come too late to matter). False when not connected (nothing was queued).
  bool send(const std::vector<std::vector<std::string>>& cmds,
            std::function<void(std::vector<Reply>&)> on_replies = {});
  // The same with commands already encoded (CommandWriter).
  boost::asio::awaitable<core::Result<std::vector<Reply>>> pipeline(EncodedCommands cmds);
  bool send(const EncodedCommands& cmds, std::function<void(std::vector<Reply>&)> on_replies = {});

  // For metrics (read on the client's executor): failed commands and command latency.
  std::uint64_t failures() const noexcept { return failures_; }
  const core::Histogram& latency() const noexcept { return latency_; }

  // Called on the executor after every successful (re)connect, e.g. to re-warm caches.
  void on_connected(std::function<void()> cb) { on_connected_ = std::move(cb); }
  // True once connected, false if `deadline` passes first (or the client is stopped).
  boost::asio::awaitable<bool> wait_connected(std::chrono::milliseconds deadline);

 private:
  struct Pending;  // one pipeline awaiting its replies

  boost::asio::awaitable<void> run(std::shared_ptr<RedisClient> self);
  boost::asio::awaitable<void> read_loop(ReplyParser& parser);
  boost::asio::awaitable<void> write_loop(std::shared_ptr<RedisClient> self, std::uint64_t generation);
  bool overdue() const;
  void flush_now();
  void drop_connection();
  void fail_pending();

  boost::asio::any_io_executor ex_;
  RedisOptions opts_;
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer write_signal_;  // the idle writer sleeps on it; cancel() wakes it
  boost::asio::steady_timer backoff_;
  std::string out_;                               // encoded commands not yet handed to the socket
  bool writing_ = false;                          // write_loop has a buffer on the wire
  std::deque<std::shared_ptr<Pending>> pending_;  // FIFO, matches replies to commands
  std::size_t pending_commands_ = 0;
  std::vector<boost::asio::steady_timer*> connect_waiters_;
  std::function<void()> on_connected_;
  std::uint64_t generation_ = 0;  // bumped per connection so a stale writer knows to quit
  bool connected_ = false;
  bool started_ = false;
  std::uint64_t failures_ = 0;
  core::Histogram latency_;
  bool stopped_ = false;
};

}  // namespace cache
