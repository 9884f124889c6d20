#pragma once
// Asio vocabulary shared by the gateway's files. Only gateway/ includes this.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace gw {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

using Clock = std::chrono::steady_clock;

template <class Rep, class Period>
Clock::duration to_steady(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<Clock::duration>(d);
}

}  // namespace gw
