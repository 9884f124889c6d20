#include "gateway/router.hpp"

#include "core/keys.hpp"
#include "gateway/handlers.hpp"
#include "gateway/responses.hpp"

namespace gw {
namespace {

core::RouteTable<Handler> build_table() {
  core::RouteTable<Handler> t;
  t.add("GET", "/health/live", &health_live);
  t.add("GET", "/health/ready", &health_ready);
  t.add("GET", "/health", &health_info);

  t.add("POST", "/admin/providers", &admin_create_provider);
  t.add("GET", "/admin/providers", &admin_list_providers);
  t.add("GET", "/admin/providers/{id}", &admin_get_provider);
  t.add("PUT", "/admin/providers/{id}", &admin_update_provider);
  t.add("DELETE", "/admin/providers/{id}", &admin_delete_provider);
  t.add("POST", "/admin/models", &admin_create_model);
  t.add("GET", "/admin/models", &admin_list_models);
  t.add("GET", "/admin/models/{id}", &admin_get_model);
  t.add("PUT", "/admin/models/{id}", &admin_update_model);
  t.add("DELETE", "/admin/models/{id}", &admin_delete_model);
  t.add("POST", "/admin/keys", &admin_create_key);
  t.add("GET", "/admin/keys", &admin_list_keys);
  t.add("GET", "/admin/keys/{id}", &admin_get_key);
  t.add("PUT", "/admin/keys/{id}", &admin_update_key);
  t.add("DELETE", "/admin/keys/{id}", &admin_delete_key);
  t.add("POST", "/admin/keys/{id}/rotate", &admin_rotate_key);

  t.add("POST", "/v1/chat/completions", &v1_proxy);
  t.add("POST", "/v1/completions", &v1_proxy);
  t.add("POST", "/v1/embeddings", &v1_proxy);
  t.add("GET", "/v1/models", &v1_list_models);
  t.add("GET", "/v1/models/{model*}", &v1_get_model);
  return t;
}

const core::RouteTable<Handler>& table() {
  static const core::RouteTable<Handler> t = build_table();
  return t;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

bool is_admin_path(std::string_view path) {
  return path == "/admin" || path.rfind("/admin/", 0) == 0;
}

}  // namespace

net::awaitable<Response> dispatch(App& app, Exchange& ex) {
  const std::string_view path = path_of(ex.req.target());
  if (is_admin_path(path)) {
    // Before routing, so an unauthenticated caller learns nothing about which routes exist.
    const auto token = core::bearer_token(ex.req[http::field::authorization]);
    if (token.empty() || !core::constant_time_equal(token, app.cfg.admin_key))
      co_return error_response(ex.req, {core::errc::invalid_api_key, "Invalid admin key."});
  }
  auto m = table().match(ex.req.method_string(), path);
  switch (m.outcome) {
    case core::RouteTable<Handler>::Outcome::not_found:
      co_return error_response(ex.req, {core::errc::not_found, "Unknown path."});
    case core::RouteTable<Handler>::Outcome::method_not_allowed: {
      auto res = error_response(ex.req, {core::errc::method_not_allowed});
      res.set(http::field::allow, m.allow);
      co_return res;
    }
    case core::RouteTable<Handler>::Outcome::found:
      break;
  }
  ex.params = std::move(m.params);
  co_return co_await (*m.handler)(app, ex);
}

}  // namespace gw
