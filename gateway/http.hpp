#pragma once
// Beast/Asio vocabulary shared by the gateway's files. Only gateway/ includes this.
#include "core/route_table.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <string>

namespace gw {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Clock = std::chrono::steady_clock;

template <class Rep, class Period>
Clock::duration to_steady(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<Clock::duration>(d);
}

struct UpstreamConn;

// Sessions register in App::sessions so a shutdown can close idle keep-alive connections at once,
// wait for busy ones, and after the grace period cut both sides of whatever is still streaming.
struct SessionEntry {
  beast::tcp_stream* stream = nullptr;
  bool idle = true;
  UpstreamConn* upstream = nullptr;  // while relaying
};

// One request/response exchange within a client connection.
struct Exchange {
  Request& req;
  beast::tcp_stream& client;
  SessionEntry& session;
  core::PathParams params;
  std::string request_id;
  bool client_sent_request_id = false;

  // Set by handlers that write their own response (the streaming relay); the session then only
  // logs and decides whether the connection can be reused.
  bool responded = false;
  unsigned status = 0;
  bool keep_alive = true;
  std::string model;  // for the access log
};

}  // namespace gw
