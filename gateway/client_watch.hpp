#pragma once
// Notices a client that goes away while the gateway works for it (connecting upstream, waiting for
// the response head, streaming), and then cancels the upstream side at once, so the provider stops
// generating tokens nobody will read. Runs beside the request: a read-readiness wait on the client
// socket whose handler holds only shared state, never the session's frame.
#include "gateway/session_list.hpp"

#include <memory>

namespace gw {

// Non-blocking look at a client socket: true when it has closed (FIN) or been reset. Bytes of a
// pipelined next request do not count.
bool client_gone_now(tcp::socket& client) noexcept;

class ClientWatch {
 public:
  ClientWatch(tcp::socket& client, SessionEntry& entry);
  ~ClientWatch();  // stops watching; the pending wait completes later as a no-op
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

 private:
  struct State {
    tcp::socket* client;
    SessionEntry* entry;
    bool active = true;
  };
  static void arm(const std::shared_ptr<State>& st);
  std::shared_ptr<State> state_;
};

}  // namespace gw
