#pragma once
// Which headers cross the gateway. Everything not listed stays behind: hop-by-hop headers, the
// client's gateway key, cookies, SDK telemetry.
#include <string_view>

namespace core {

// Client -> upstream (besides Content-Type / Accept / X-Request-Id / anthropic-version, which the
// gateway sets itself:
// the request id sent upstream is always the one the gateway logs and answers with).
bool forward_to_upstream(std::string_view name) noexcept;
// Upstream -> client.
bool forward_to_client(std::string_view name) noexcept;
// The same for a key with limits of its own: the gateway's x-ratelimit-* replace the provider's.
bool forward_to_limited_client(std::string_view name) noexcept;

}  // namespace core
