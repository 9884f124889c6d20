#pragma once
// A non-blocking look at what a socket holds, without consuming it (recv with MSG_PEEK): used on
// idle pooled upstream connections and on clients the gateway is working for.
#include "gateway/http.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace gw {

enum class Peek { nothing, data, closed, failed };

inline Peek peek(tcp::socket& s) noexcept {
  if (!s.is_open()) return Peek::closed;
  char probe;
  const auto n = ::recv(s.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return Peek::data;
  if (n == 0) return Peek::closed;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Peek::nothing : Peek::failed;
}

}  // namespace gw
