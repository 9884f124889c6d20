#pragma once
// How to reach Redis, and the steps every connection shares (client and subscriber alike):
// connect + handshake under one deadline, and reading one reply at a time.
#include "cache/redis_protocol.hpp"
#include "core/result.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace cache {

struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string username, password;  // AUTH is sent only if password is set
  int db = 0;                      // SELECT is sent only if db != 0
  std::chrono::milliseconds connect_timeout{1000}, command_timeout{500};
  std::size_t max_pending = 10000;  // commands awaiting a reply, per client
};

namespace detail {
// Shared by the client, the subscriber and the connection steps.
inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
// The message is for the log; callers never show it to clients.
inline core::Error unavailable(std::string why) {
  return {core::errc::cache_unavailable, std::move(why)};
}
}  // namespace detail

// Reconnect backoff: doubles from the first to the last.
inline constexpr std::chrono::milliseconds kMinBackoff{100}, kMaxBackoff{2000};

// Connects `sock` and runs AUTH / SELECT / PING, all within opts.connect_timeout. PING proves the
// server actually answers (a stopped process still completes TCP handshakes via the backlog).
// Any bytes past the handshake replies stay buffered in `parser`. On failure `sock` is closed.
boost::asio::awaitable<core::Status> connect_redis(boost::asio::ip::tcp::socket& sock, ReplyParser& parser,
                                                   RedisOptions opts);

// Reads until `parser` yields one complete reply. No deadline: callers bound it themselves.
boost::asio::awaitable<core::Result<Reply>> read_reply(boost::asio::ip::tcp::socket& sock,
                                                       ReplyParser& parser);

}  // namespace cache
