#pragma once
// Notices a client that goes away while the gateway works for it (connecting upstream, waiting for
// the response head, streaming), and then cancels the upstream side at once, so the provider stops
// generating tokens nobody will read. Runs beside the request: a read-readiness wait on the client
// socket whose handler holds only shared state, never the session's frame.
//
// The wait is armed only once the request has lasted a sweeper tick (25 to 50 ms): a readiness
// wait costs an epoll_ctl, a heap allocation and, when cancelled, a trip through the scheduler,
// and most requests that end sooner (errors, cached answers, fast upstreams) never need it. An LLM
// call lasts seconds, so a departing client is still noticed within 50 ms.
#include "gateway/deadlines.hpp"
#include "gateway/session_list.hpp"

#include <memory>

namespace gw {

// Non-blocking look at a client socket: true when it has closed (FIN) or been reset. Bytes of a
// pipelined next request do not count.
bool client_gone_now(tcp::socket& client) noexcept;

class ClientWatch final : Ticker {
 public:
  ClientWatch(Deadlines& deadlines, tcp::socket& client, SessionEntry& entry);
  ~ClientWatch() override;  // stops watching; a pending wait completes later as a no-op

 private:
  void on_tick(Clock::time_point now) override;
  struct State {
    tcp::socket* client;
    SessionEntry* entry;
    bool active = true;
  };
  static void arm(const std::shared_ptr<State>& st);
  tcp::socket& client_;
  SessionEntry& entry_;
  const Clock::time_point since_ = Clock::now();
  std::shared_ptr<State> state_;  // once armed
};

}  // namespace gw
