#pragma once
// Method + path -> endpoint, decided from the head alone, so the session knows before reading a
// body who must be authenticated and how (and answers 404 / 405 / 401 without buffering it).
#include "gateway/handlers.hpp"

#include <optional>

namespace gw {

enum class Access : unsigned char {
  open,   // health
  admin,  // Bearer ADMIN_KEY
  user,   // a user key (/v1)
};

struct Endpoint {
  Handler handler = nullptr;
  Access access = Access::open;
  Flavor flavor = Flavor::openai;
};

struct Routed {
  const Endpoint* endpoint = nullptr;  // null: `early` is the answer
  core::PathParams params;
  std::optional<Response> early;
};

// 404 / 405 (+Allow), and for /admin paths the admin key check first, so an unauthenticated
// caller learns nothing about which admin routes exist.
Routed route(const Request& req, const core::Config& cfg);

// Runs the handler. An exception escaping it is the dispatch boundary's to catch: logged with the
// request id, answered 500 in the API's shape (never with its text).
net::awaitable<Response> invoke(App& app, Exchange& ex, const Endpoint& endpoint);

}  // namespace gw
