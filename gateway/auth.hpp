#pragma once
// Authentication of /v1 requests, from the headers alone (before the body is read).
#include "gateway/app.hpp"
#include "gateway/request.hpp"
#include "gateway/response.hpp"

namespace gw {

// The user key a request presents: `Authorization: Bearer <key>`, or on the Anthropic path also
// `x-api-key: <key>` (what Anthropic's SDKs send). Empty when there is none.
std::string_view presented_key(const Request& req, Flavor flavor) noexcept;

// The key's record, or missing_api_key / invalid_api_key / db_unavailable. Lookup order: this
// worker's cache (no I/O), then Redis (one round trip: the record and the warm marker), and only
// when Redis is down or not known to hold every key, PostgreSQL. Unknown keys are remembered
// briefly, so a flood of wrong keys costs neither PostgreSQL nor Redis a query each.
net::awaitable<core::Result<KeyPtr>> authenticate(App& app, std::string_view token);

}  // namespace gw
