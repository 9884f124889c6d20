#pragma once
#include "gateway/app.hpp"
#include "gateway/http.hpp"

namespace gw {

// Accepts connections until the acceptor is closed; one session coroutine per connection. Beyond
// MAX_CONNECTIONS a connection is answered 503 (Retry-After) and closed.
net::awaitable<void> accept_loop(App& app, tcp::acceptor& acceptor);

// Shutdown, step 1: no new requests; idle keep-alive connections are closed now, busy ones after
// their current response.
void begin_drain(App& app);

// Shutdown, step 2 (grace period over): cut every remaining client and upstream connection and
// every wait for a provider, so every session coroutine ends promptly.
void force_close(App& app);

}  // namespace gw
