#pragma once
// The heart of the gateway: send one request upstream and stream the response back to the client
// as it arrives. Framing decisions are core's (core/http1*, core/relay_plan); this file only moves
// bytes: one bounded read buffer per stream, each upstream read forwarded in one client write
// (back-pressure: the next read starts after the write finished), nothing of the body kept.
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/http1.hpp"
#include "core/usage.hpp"
#include "gateway/deadlines.hpp"
#include "gateway/session_list.hpp"
#include "gateway/upstream_pool.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw {

// What goes upstream: a rendered head (core::render_upstream_head) and the body bytes.
struct UpstreamRequest {
  std::string_view method = "POST";
  std::string head;
  std::string_view body;
};

// The client side of one exchange.
struct RelayClient {
  tcp::socket& socket;
  Deadline& deadline;
  SessionEntry& session;
  int version_minor = 1;
  bool keep_alive = true;
  std::string_view request_id;
  std::span<const core::http1::Field> extra;  // more response headers (X-LLM-*, rate limits)
  bool own_rate_headers = false;               // drop the provider's x-ratelimit-* (extra has ours)
  Clock::time_point received_at{};             // when the request head was read
};

// Observers and decisions of the proxy handler (failover, usage capture, metrics plug in here).
class RelayHooks {
 public:
  virtual ~RelayHooks() = default;
  // The final upstream head, before anything reached the client: false declines it (the caller
  // fails over; the client sees nothing of it).
  virtual bool on_head(const core::http1::ResponseHead&) { return true; }
  // A declined response is read and kept (status, forwarded headers, body) when its body is at
  // most this long, so it can still be given to the client if no other route does better.
  virtual std::size_t capture_declined() { return 0; }
  // Each piece of body data as the upstream sent it (before any filter).
  virtual void on_data(std::string_view) {}
  // Asked once the head is accepted: a scanner every body byte passes through on its way to the
  // client (usage capture; when it filters, the client gets chunked framing).
  virtual core::UsageScanner* body_scanner() { return nullptr; }
  // The whole body has passed (usage is known); its last bytes are about to go to the client.
  // Whatever must happen before the client can act on the answer happens here.
  virtual void on_complete() {}
};

// A declined upstream answer, kept whole.
struct CapturedResponse {
  unsigned status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // the ones the client may see
  std::string body;
};

struct RelayResult {
  core::errc error = core::errc::ok;  // why it failed, when nothing reached the client
  bool request_unsent = false;        // no byte of the request reached the upstream: safe to retry
  bool declined = false;              // on_head declined the response
  bool responded = false;             // a response head reached the client
  bool complete = false;              // the whole body reached the client
  bool client_gone = false;
  bool upstream_reusable = false;  // read to the end, nothing unread: may go back to the pool
  bool client_keep_alive = false;  // the client connection may carry another request
  unsigned status = 0;
  std::string upstream_request_id;  // the provider's id, when it is a well-formed one
  Clock::duration head_latency{};   // request written -> final upstream head
  Clock::time_point first_body_at{};  // the first body byte went to the client (epoch: never)
  std::optional<CapturedResponse> captured;  // a declined response, when kept
};

net::awaitable<RelayResult> relay(UpstreamConn& upstream, const UpstreamRequest& request, RelayClient& client,
                                  const core::Config& cfg, RelayHooks* hooks);

}  // namespace gw
