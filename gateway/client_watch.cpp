#include "gateway/client_watch.hpp"

#include "gateway/socket_peek.hpp"

namespace gw {

bool client_gone_now(tcp::socket& client) noexcept {
  const Peek p = peek(client);
  return p == Peek::closed || p == Peek::failed;  // a pipelined request (data) means alive
}

ClientWatch::ClientWatch(Deadlines& deadlines, tcp::socket& client, SessionEntry& entry)
    : Ticker(deadlines), client_(client), entry_(entry) {}

void ClientWatch::on_tick(Clock::time_point now) {
  if (now - since_ < Deadlines::kTick) return;
  stop_ticking();
  state_ = std::make_shared<State>(State{&client_, &entry_});
  arm(state_);
}

ClientWatch::~ClientWatch() {
  if (!state_) return;
  state_->active = false;
  // Only the wait is pending on the client socket now (the session reads and writes in sequence),
  // so cancelling affects nothing else.
  if (client_.is_open()) {
    error_code ignored;
    client_.cancel(ignored);
  }
}

void ClientWatch::arm(const std::shared_ptr<State>& st) {
  st->client->async_wait(tcp::socket::wait_read, [st](error_code ec) {
    if (!st->active) return;
    if (ec == net::error::operation_aborted && st->client->is_open()) {
      arm(st);  // a deadline cancelled the socket's operations: keep watching
      return;
    }
    if (!ec && !client_gone_now(*st->client)) return;  // the next request is here: nothing to watch
    st->entry->client_gone = true;
    st->entry->cancel_upstream();
  });
}

}  // namespace gw
