#pragma once
// The heart of the gateway: send one request upstream and stream the response back to the client
// byte for byte as it arrives. The body is never parsed or accumulated: one fixed buffer per
// stream, and the next upstream read starts only after the client write finished (back-pressure).
#include "core/config.hpp"
#include "core/error.hpp"
#include "gateway/buffer_pool.hpp"
#include "gateway/upstream_pool.hpp"

namespace gw {

struct RelayRequest {
  beast::tcp_stream& client;
  http::request<http::string_body>& upstream_request;
  std::string& request_id;  // may adopt the upstream's id when the client sent none
  bool client_sent_request_id;
  bool client_keep_alive;
  unsigned client_version;  // 10 or 11: HTTP/1.0 clients get a close-delimited body, never chunks
  const core::Config& cfg;
  BufferPool& buffers;
  bool relay_done = false;  // set before the relay wakes the client watcher
};

struct RelayResult {
  core::errc error = core::errc::ok;  // meaningful only when !responded
  bool responded = false;             // a response header reached the client
  bool complete = false;              // the whole body reached the client
  bool client_gone = false;
  bool retry_on_fresh = false;  // a pooled connection was dead before answering: try a new one
  bool upstream_reusable = false;
  unsigned status = 0;
};

// Relays over an already connected upstream connection. While it runs, a watcher notices a
// client that goes away and closes the upstream connection at once, so the provider stops work.
net::awaitable<RelayResult> relay(UpstreamConn& upstream, RelayRequest& rq);

}  // namespace gw
