#pragma once
// Bounds an operation that cannot be cancelled (a PostgreSQL query on the pool, say): the caller
// stops waiting at the deadline; the operation finishes in the background and is ignored.
#include "gateway/http.hpp"

#include <memory>
#include <optional>

namespace gw {

template <class T>
net::awaitable<std::optional<T>> with_deadline(net::awaitable<T> op, Clock::duration limit) {
  auto ex = co_await net::this_coro::executor;
  struct State {
    explicit State(net::any_io_executor e, Clock::duration d) : timer(e, d) {}
    net::steady_timer timer;
    std::optional<T> value;
  };
  auto state = std::make_shared<State>(ex, limit);
  auto on_done = [state](std::exception_ptr e, T v) {
    if (!e) state->value = std::move(v);
    state->timer.cancel();
  };
  net::co_spawn(ex, std::move(op), std::move(on_done));
  co_await state->timer.async_wait(use_tuple);
  co_return std::move(state->value);
}

}  // namespace gw
