// /v1: authenticate, route, rewrite, relay. Each step is a small function; the relay does the
// streaming (gateway/relay.cpp).
#include "core/crypto.hpp"
#include "core/header_policy.hpp"
#include "core/keys.hpp"
#include "core/log.hpp"
#include "core/model_rewrite.hpp"
#include "core/upstream_target.hpp"
#include "gateway/handlers.hpp"
#include "gateway/relay.hpp"
#include "gateway/responses.hpp"
#include "providers/provider.hpp"

#include <boost/json.hpp>

namespace gw {
namespace {

using core::errc;

// Records last_used_at in the background, at most once a minute per key: never on the request's path.
void note_key_use(App& app, const std::string& hash) {
  if (app.local.touched_keys.find(hash)) return;
  app.local.touched_keys.put(hash, true);
  net::co_spawn(app.ioc, app.keys.touch_last_used(hash), net::detached);
}

// A key seen valid within the last second passes without I/O; otherwise SISMEMBER in Redis; on a
// miss or when Redis is down, PostgreSQL decides (and repairs Redis). Known-bad hashes are
// remembered briefly so a flood of wrong keys never reaches PostgreSQL.
net::awaitable<core::Status> authenticate(App& app, const Request& req) {
  const auto token = core::bearer_token(req[http::field::authorization]);
  if (token.empty()) co_return core::Error{errc::missing_api_key};
  std::string hash = core::sha256_hex(token);
  if (app.local.good_keys.find(hash)) {
    note_key_use(app, hash);
    co_return core::ok();
  }
  auto cached = co_await app.stores.key_active(hash);
  if (cached && *cached) {
    note_key_use(app, hash);
    app.local.good_keys.put(std::move(hash), true);
    co_return core::ok();
  }
  if (app.local.bad_keys.find(hash)) co_return core::Error{errc::invalid_api_key};
  auto found = co_await app.keys.find_active(hash);
  if (!found) co_return found.error();
  if (!*found) {
    app.local.bad_keys.put(std::move(hash), true);
    co_return core::Error{errc::invalid_api_key};
  }
  note_key_use(app, hash);
  app.local.good_keys.put(hash, true);
  if (cached) (void)co_await app.stores.add_key(std::move(hash));  // Redis answered but had lost it
  co_return core::ok();
}

// In-process map, then the Redis hash, then PostgreSQL. nullptr: no such (active) model.
net::awaitable<core::Result<RoutePtr>> find_route(App& app, const std::string& model) {
  if (const auto* hit = app.local.routes.find(model)) co_return *hit;
  auto cached = co_await app.stores.route(model);
  if (cached && *cached) {
    auto entry = make_route_entry(std::move(**cached));
    app.local.routes.put(model, entry);
    co_return entry;
  }
  auto stored = co_await app.routes.find(model);
  if (!stored) co_return stored.error();
  if (!*stored) {
    app.local.routes.put(model, nullptr);
    co_return RoutePtr{};
  }
  if (cached) (void)co_await app.stores.put_route(**stored);  // Redis answered but had lost it
  auto entry = make_route_entry(std::move(**stored));
  app.local.routes.put(model, entry);
  co_return entry;
}

// Decrypted provider key, kept in process memory only.
net::awaitable<core::Result<std::string>> provider_secret(App& app, const std::string& provider_id) {
  if (const auto* hit = app.local.secrets.find(provider_id)) co_return *hit;
  auto sealed = co_await app.providers.secret(provider_id);
  if (!sealed) co_return sealed.error();
  std::string plain;
  if (!sealed->empty()) {
    auto opened = core::open(app.cfg.encryption_key, *sealed);
    if (!opened) {
      core::log::error("cannot decrypt a provider key (was ENCRYPTION_KEY changed?)",
                       {{"provider_id", provider_id}});
      co_return core::Error{errc::internal};
    }
    plain = std::move(*opened);
  }
  app.local.secrets.put(provider_id, plain);
  co_return plain;
}

core::Error model_not_found(const std::string& model) {
  return {errc::model_not_found, "The model `" + model + "` does not exist or you do not have access to it.",
          "model"};
}

http::request<http::string_body> upstream_request(const Exchange& ex, const core::UpstreamTarget& t,
                                                  const providers::ProviderKind& kind,
                                                  const std::string& secret, std::string body) {
  // "/v1/chat/completions?x" -> base_path + "/chat/completions?x"
  const std::string_view suffix = ex.req.target().substr(3);
  http::request<http::string_body> up{http::verb::post, core::upstream_request_target(t, suffix), 11};
  up.set(http::field::host, t.host_header);
  up.set(http::field::user_agent, "llm-gateway/0.1");
  up.set(http::field::content_type, "application/json");
  const auto accept = ex.req[http::field::accept];
  if (accept.empty())
    up.set(http::field::accept, "application/json");
  else
    up.set(http::field::accept, accept);
  for (const auto& f : ex.req)
    if (core::forward_to_upstream(f.name_string())) up.insert(f.name_string(), f.value());
  kind.apply_headers(up.base(), secret);
  up.body() = std::move(body);
  up.keep_alive(true);
  up.prepare_payload();
  return up;
}

// Connect (or reuse), relay, and retry once on a fresh connection when a pooled one turned out
// to be dead before any byte of the answer.
net::awaitable<Response> forward(App& app, Exchange& ex, const core::UpstreamTarget& target,
                                 http::request<http::string_body>& up) {
  for (int attempt = 0;; ++attempt) {
    auto conn = co_await app.upstream.acquire(target, attempt == 0);
    if (!conn) co_return error_response(ex.req, conn.error());
    RelayRequest rq{ex.client,
                    up,
                    ex.request_id,
                    ex.client_sent_request_id,
                    ex.keep_alive && !app.draining,
                    ex.req.version() == 10 ? 10u : 11u,
                    app.cfg,
                    app.buffers};
    ex.session.upstream = conn->get();
    const RelayResult r = co_await relay(**conn, rq);
    ex.session.upstream = nullptr;
    if (r.complete && r.upstream_reusable) app.upstream.release(target, std::move(*conn));
    if (!r.responded && !r.client_gone) {
      if (r.retry_on_fresh && attempt == 0) continue;
      co_return error_response(ex.req, {r.error});
    }
    ex.responded = true;
    ex.status = r.client_gone && !r.responded ? 499 : r.status;
    ex.keep_alive = r.complete && rq.client_keep_alive;
    co_return Response{};
  }
}

boost::json::object model_object(const core::Route& r) {
  return {{"id", r.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", r.provider_kind}};
}

}  // namespace

net::awaitable<Response> v1_proxy(App& app, Exchange& ex) {
  if (auto auth = co_await authenticate(app, ex.req); !auth) co_return error_response(ex.req, auth.error());
  auto info = core::inspect_inference_body(ex.req.body());
  if (!info) co_return error_response(ex.req, info.error());
  ex.model = info->model;

  auto found = co_await find_route(app, info->model);
  if (!found) co_return error_response(ex.req, found.error());
  const RoutePtr entry = std::move(*found);  // keeps the entry alive across suspensions
  if (!entry) co_return error_response(ex.req, model_not_found(info->model));
  if (!entry->kind || !entry->target) co_return error_response(ex.req, {errc::internal});
  auto secret = co_await provider_secret(app, entry->route.provider_id);
  if (!secret) co_return error_response(ex.req, secret.error());

  auto up = upstream_request(ex, *entry->target, *entry->kind, *secret,
                             core::rewrite_model(ex.req.body(), *info, entry->route.upstream_model));
  co_return co_await forward(app, ex, *entry->target, up);
}

net::awaitable<Response> v1_list_models(App& app, Exchange& ex) {
  if (auto auth = co_await authenticate(app, ex.req); !auth) co_return error_response(ex.req, auth.error());
  // An empty hash may be a Redis that lost its data: then PostgreSQL answers (cheap, and right
  // when there really are no models).
  auto routes = co_await app.stores.all_routes();
  if (!routes || routes->empty()) routes = co_await app.routes.all();
  if (!routes) co_return error_response(ex.req, routes.error());
  boost::json::array data;
  for (const auto& r : *routes) data.emplace_back(model_object(r));
  co_return json_response(
      ex.req, http::status::ok,
      boost::json::serialize(boost::json::object{{"object", "list"}, {"data", std::move(data)}}));
}

net::awaitable<Response> v1_get_model(App& app, Exchange& ex) {
  if (auto auth = co_await authenticate(app, ex.req); !auth) co_return error_response(ex.req, auth.error());
  const std::string model(ex.params.get("model"));
  auto found = co_await find_route(app, model);
  if (!found) co_return error_response(ex.req, found.error());
  if (!*found) co_return error_response(ex.req, model_not_found(model));
  co_return json_response(ex.req, http::status::ok, boost::json::serialize(model_object((*found)->route)));
}

}  // namespace gw
