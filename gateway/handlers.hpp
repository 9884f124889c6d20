#pragma once
// Every HTTP handler. Handlers are thin: parse with core/, act through storage/ and cache/, answer.
#include "gateway/app.hpp"
#include "gateway/exchange.hpp"

namespace gw {

using Handler = net::awaitable<Response> (*)(App&, Exchange&);

// health_handlers.cpp
net::awaitable<Response> health_live(App&, Exchange&);
net::awaitable<Response> health_ready(App&, Exchange&);
net::awaitable<Response> health_info(App&, Exchange&);

// metrics_handler.cpp
net::awaitable<Response> metrics(App&, Exchange&);

// admin_handlers.cpp
net::awaitable<Response> admin_create_provider(App&, Exchange&);
net::awaitable<Response> admin_list_providers(App&, Exchange&);
net::awaitable<Response> admin_get_provider(App&, Exchange&);
net::awaitable<Response> admin_update_provider(App&, Exchange&);
net::awaitable<Response> admin_delete_provider(App&, Exchange&);
net::awaitable<Response> admin_create_model(App&, Exchange&);
net::awaitable<Response> admin_list_models(App&, Exchange&);
net::awaitable<Response> admin_get_model(App&, Exchange&);
net::awaitable<Response> admin_update_model(App&, Exchange&);
net::awaitable<Response> admin_delete_model(App&, Exchange&);
net::awaitable<Response> admin_create_key(App&, Exchange&);
net::awaitable<Response> admin_list_keys(App&, Exchange&);
net::awaitable<Response> admin_get_key(App&, Exchange&);
net::awaitable<Response> admin_update_key(App&, Exchange&);
net::awaitable<Response> admin_rotate_key(App&, Exchange&);
net::awaitable<Response> admin_delete_key(App&, Exchange&);

// admin_logs.cpp
net::awaitable<Response> admin_logs(App&, Exchange&);
net::awaitable<Response> admin_stats(App&, Exchange&);
// A key's JSON with "usage" (today, month, total) added, and "budget" (used and left since the
// last reset) for a key with a budget.
net::awaitable<std::string> with_key_usage(App& app, std::string key_json, const core::UserKey& key);

// admin_handlers.cpp: routes of a model
net::awaitable<Response> admin_list_routes(App&, Exchange&);
net::awaitable<Response> admin_create_route(App&, Exchange&);
net::awaitable<Response> admin_update_route(App&, Exchange&);
net::awaitable<Response> admin_delete_route(App&, Exchange&);

// proxy_handler.cpp
net::awaitable<Response> v1_proxy(App&, Exchange&);
net::awaitable<Response> v1_response_by_id(App&, Exchange&);
net::awaitable<Response> v1_messages(App&, Exchange&);
net::awaitable<Response> v1_list_models(App&, Exchange&);
net::awaitable<Response> v1_get_model(App&, Exchange&);

}  // namespace gw
