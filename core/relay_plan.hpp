#pragma once
// The response-head plan of the relay, pure: given the upstream's final response head and what we
// know about the client, decide how the body is framed towards the client, whether the client
// connection survives, and render the head the client receives. The status code and reason phrase
// pass through as numbers and bytes (529 stays "529 Overloaded"; no status table in between).
#include "core/http1.hpp"

#include <span>
#include <string>

namespace core::http1 {

struct ClientView {
  int version_minor = 1;         // HTTP/1.0 clients never get chunked framing (RFC 9112 6.1)
  bool keep_alive = true;        // the client allows it and we are not draining
  bool body_may_change = false;  // the relay may drop bytes of the body: never promise a length
};

struct RelayPlan {
  Framing framing = Framing::none;  // towards the client
  std::uint64_t content_length = 0;
  bool length_header = true;  // false for 204 / 304, which carry no Content-Length of their own
  bool keep_alive = true;     // the client connection may carry another request afterwards
};

RelayPlan plan_relay(const ResponseHead& upstream, const ClientView& client);

using FieldFilter = bool (*)(std::string_view name) noexcept;

// Appends the client's head to `out`: the upstream status line (with the client's HTTP version),
// the upstream fields `forward` lets through, `extra`, then framing and Connection.
void render_relay_head(const ResponseHead& upstream, const RelayPlan& plan, int client_version_minor,
                       FieldFilter forward, std::span<const Field> extra, std::string& out);

}  // namespace core::http1
