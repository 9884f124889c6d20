#pragma once
// Writes that finish on the spot when the kernel takes the bytes. Asio posts the completion of
// every asynchronous operation, even one whose speculative send already wrote everything, so each
// write costs a trip through the scheduler: one more epoll_wait and a coroutine resume per write.
// A proxy's writes nearly always fit the socket buffer, so on a plain TCP socket (put in
// non-blocking mode once, by `make_non_blocking`) the bytes first go out with non-blocking sendmsg
// calls right here; only what the kernel would not take waits in the reactor, under the socket's
// Deadline like any other operation. TLS streams take the asynchronous path as before.
#include "gateway/http.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include <tuple>

namespace gw {

// Once per socket (accept, connect): synchronous operations then fail with would_block instead of
// waiting. Asynchronous operations behave as before.
inline void make_non_blocking(tcp::socket& s) {
  error_code ignored;
  s.non_blocking(true, ignored);
}

template <class ConstBuffers>
net::awaitable<std::tuple<error_code, std::size_t>> write_all(tcp::socket& s, const ConstBuffers& buffers) {
  const std::size_t total = net::buffer_size(buffers);
  std::size_t done = 0;
  boost::beast::buffers_suffix<ConstBuffers> rest(buffers);
  if (s.non_blocking()) {
    while (done < total) {
      error_code ec;
      const std::size_t n = s.write_some(rest, ec);
      if (ec == net::error::would_block || ec == net::error::try_again) break;
      if (ec) co_return std::tuple{ec, done};
      rest.consume(n);
      done += n;
    }
    if (done == total) co_return std::tuple{error_code{}, total};
  }
  auto [ec, n] = co_await net::async_write(s, rest, use_tuple);
  co_return std::tuple{ec, done + n};
}

// Any other stream (TLS): the asynchronous write.
template <class Stream, class ConstBuffers>
net::awaitable<std::tuple<error_code, std::size_t>> write_all(Stream& s, const ConstBuffers& buffers) {
  auto [ec, n] = co_await net::async_write(s, buffers, use_tuple);
  co_return std::tuple{ec, n};
}

}  // namespace gw
