#include "gateway/router.hpp"

#include "core/keys.hpp"
#include "core/log.hpp"

namespace gw {
namespace {

core::RouteTable<Endpoint> build_table() {
  core::RouteTable<Endpoint> t;
  const auto open = [&](const char* m, const char* p, Handler h) { t.add(m, p, {h, Access::open}); };
  const auto admin = [&](const char* m, const char* p, Handler h) { t.add(m, p, {h, Access::admin}); };
  const auto user = [&](const char* m, const char* p, Handler h) { t.add(m, p, {h, Access::user}); };
  const auto anthropic = [&](const char* m, const char* p, Handler h) {
    t.add(m, p, {h, Access::user, Flavor::anthropic});
  };

  open("GET", "/health/live", &health_live);
  open("GET", "/health/ready", &health_ready);
  open("GET", "/health", &health_info);
  open("GET", "/metrics", &metrics);

  admin("POST", "/admin/providers", &admin_create_provider);
  admin("GET", "/admin/providers", &admin_list_providers);
  admin("GET", "/admin/providers/{id}", &admin_get_provider);
  admin("PUT", "/admin/providers/{id}", &admin_update_provider);
  admin("DELETE", "/admin/providers/{id}", &admin_delete_provider);
  admin("POST", "/admin/models", &admin_create_model);
  admin("GET", "/admin/models", &admin_list_models);
  admin("GET", "/admin/models/{id}", &admin_get_model);
  admin("PUT", "/admin/models/{id}", &admin_update_model);
  admin("DELETE", "/admin/models/{id}", &admin_delete_model);
  admin("POST", "/admin/keys", &admin_create_key);
  admin("GET", "/admin/keys", &admin_list_keys);
  admin("GET", "/admin/keys/{id}", &admin_get_key);
  admin("PUT", "/admin/keys/{id}", &admin_update_key);
  admin("DELETE", "/admin/keys/{id}", &admin_delete_key);
  admin("POST", "/admin/keys/{id}/rotate", &admin_rotate_key);
  admin("GET", "/admin/logs", &admin_logs);
  admin("GET", "/admin/stats", &admin_stats);
  admin("GET", "/admin/models/{id}/routes", &admin_list_routes);
  admin("POST", "/admin/models/{id}/routes", &admin_create_route);
  admin("PUT", "/admin/models/{id}/routes/{route_id}", &admin_update_route);
  admin("DELETE", "/admin/models/{id}/routes/{route_id}", &admin_delete_route);

  user("POST", "/v1/chat/completions", &v1_proxy);
  user("POST", "/v1/completions", &v1_proxy);
  user("POST", "/v1/embeddings", &v1_proxy);
  user("POST", "/v1/responses", &v1_proxy);
  user("GET", "/v1/responses/{id}", &v1_response_by_id);
  user("DELETE", "/v1/responses/{id}", &v1_response_by_id);
  user("POST", "/v1/responses/{id}/cancel", &v1_response_by_id);
  user("GET", "/v1/responses/{id}/input_items", &v1_response_by_id);
  anthropic("POST", "/v1/messages", &v1_messages);
  anthropic("POST", "/v1/messages/count_tokens", &v1_messages);
  user("GET", "/v1/models", &v1_list_models);
  user("GET", "/v1/models/{model*}", &v1_get_model);
  return t;
}

const core::RouteTable<Endpoint>& table() {
  static const core::RouteTable<Endpoint> t = build_table();
  return t;
}

bool is_admin_path(std::string_view path) {
  return path == "/admin" || path.rfind("/admin/", 0) == 0;
}

}  // namespace

Routed route(const Request& req, const core::Config& cfg) {
  Routed r;
  const std::string_view path = req.path();
  if (is_admin_path(path)) {
    const auto token = core::bearer_token(req.header("authorization"));
    if (token.empty() || !core::constant_time_equal(token, cfg.admin_key)) {
      r.early = error_response(Flavor::openai, {core::errc::invalid_api_key, "Invalid admin key."});
      return r;
    }
  }
  auto m = table().match(req.method(), path);
  switch (m.outcome) {
    case core::RouteTable<Endpoint>::Outcome::not_found:
      r.early = error_response(Flavor::openai, {core::errc::not_found, "Unknown path."});
      return r;
    case core::RouteTable<Endpoint>::Outcome::method_not_allowed:
      r.early = error_response(Flavor::openai, {core::errc::method_not_allowed});
      r.early->headers.emplace_back("Allow", std::move(m.allow));
      return r;
    case core::RouteTable<Endpoint>::Outcome::found:
      break;
  }
  r.endpoint = m.handler;
  r.params = std::move(m.params);
  return r;
}

net::awaitable<Response> invoke(App& app, Exchange& ex, const Endpoint& endpoint) {
  std::string what;
  try {
    co_return co_await endpoint.handler(app, ex);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  core::log::error("handler failed", {{"request_id", ex.request_id}, {"path", ex.req.path()}, {"error", what}});
  ex.error = "internal_error";
  if (ex.responded) {  // part of a response is out: the connection can only be cut
    ex.keep_alive = false;
    co_return Response{};
  }
  co_return ex.fail({core::errc::internal});
}

}  // namespace gw
