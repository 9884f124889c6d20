#pragma once
#include "gateway/app.hpp"
#include "gateway/http.hpp"

namespace gw {

// Method + path -> handler; 404 / 405 with Allow; admin authentication before anything under /admin.
net::awaitable<Response> dispatch(App& app, Exchange& ex);

}  // namespace gw
