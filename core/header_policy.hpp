#pragma once
// Which headers cross the gateway. Everything not listed stays behind: hop-by-hop headers, the
// client's gateway key, cookies, SDK telemetry.
#include <string_view>

namespace core {

// Client -> upstream (besides Content-Type / Accept, which the relay sets itself).
bool forward_to_upstream(std::string_view name) noexcept;
// Upstream -> client.
bool forward_to_client(std::string_view name) noexcept;

}  // namespace core
