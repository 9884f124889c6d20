// /v1: route, rewrite, relay. The key was authenticated from the headers before the body was read
// (gateway/server.cpp); each step here is a small function; the relay does the streaming.
#include "core/crypto.hpp"
#include "core/header_policy.hpp"
#include "core/http1_write.hpp"
#include "core/log.hpp"
#include "core/model_rewrite.hpp"
#include "core/upstream_target.hpp"
#include "gateway/client_watch.hpp"
#include "gateway/handlers.hpp"
#include "gateway/relay.hpp"
#include "providers/provider.hpp"

#include <boost/json.hpp>

namespace gw {
namespace {

using core::errc;

// In-process map, then the Redis hash, then PostgreSQL. nullptr: no such (active) model. Callers
// pass only names that passed core::valid_model_name.
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

core::Error model_not_found(std::string_view model) {
  return {errc::model_not_found,
          "The model `" + std::string(model) + "` does not exist or you do not have access to it.", "model"};
}

// The head the provider receives: our own Host, content headers and request id, the client headers
// the policy lets through, the provider's credentials.
std::string upstream_head(const Exchange& ex, const RouteEntry& e, std::string_view secret, std::size_t body_size) {
  std::string out;
  out.reserve(512);
  core::http1::HeadWriter w(out);
  // "/v1/chat/completions?x" -> base_path + "/chat/completions?x"
  w.request_line("POST", core::upstream_request_target(*e.target, ex.req.target().substr(3)));
  w.field("Host", e.target->host_header);
  w.field("User-Agent", "llm-gateway/0.1");
  w.field("Content-Type", "application/json");
  const auto accept = ex.req.header("accept");
  w.field("Accept", accept.empty() ? std::string_view("application/json") : accept);
  w.field("X-Request-Id", ex.request_id);
  for (const auto& f : ex.req.head().fields)
    if (core::forward_to_upstream(f.name)) w.field(f.name, f.value);
  e.kind->apply_headers(w, secret);
  w.field("Content-Length", std::uint64_t{body_size});
  w.end();
  return out;
}

// Connect (or reuse), relay. A pooled connection that turns out dead before any byte of the request
// was written is replaced once by a fresh one; once a byte went out, a POST is never sent again.
net::awaitable<Response> forward(App& app, Exchange& ex, const RouteEntry& entry, const UpstreamRequest& up) {
  ClientWatch watch(ex.client, ex.session);
  RelayClient client{ex.client,           ex.client_deadline, ex.session, ex.req.version_minor(),
                     ex.keep_alive && !app.draining, ex.request_id};
  for (int attempt = 0;; ++attempt) {
    auto conn = co_await app.upstream.acquire(*entry.target, ex.session);
    RelayResult r;
    bool reused = false;
    if (conn) {
      reused = (*conn)->reused;
      r = co_await relay(**conn, up, client, app.cfg, nullptr);
      if (r.complete && r.upstream_reusable) app.upstream.release(*entry.target, std::move(*conn));
    } else {
      r.error = conn.error().code;
      r.request_unsent = true;
    }
    ex.upstream_request_id = r.upstream_request_id;
    if (ex.session.client_gone && !r.responded) r.client_gone = true;
    if (r.client_gone && !r.responded) {  // nothing to answer: log 499 and close
      ex.responded = true;
      ex.status = 499;
      ex.keep_alive = false;
      ex.error = "client_gone";
      co_return Response{};
    }
    if (!r.responded) {
      if (conn && r.request_unsent && reused && attempt == 0) continue;
      ex.error = std::string(core::to_string(r.error));
      co_return ex.fail(conn ? core::Error{r.error} : conn.error());
    }
    ex.responded = true;
    ex.status = r.status;
    ex.keep_alive = r.complete && r.client_keep_alive;
    if (!r.complete) ex.error = r.client_gone ? "client_gone" : "upstream_cut";
    co_return Response{};
  }
}

boost::json::object model_object(const core::Route& r) {
  return {{"id", r.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", r.provider_kind}};
}

}  // namespace

net::awaitable<Response> v1_proxy(App& app, Exchange& ex) {
  auto info = core::inspect_inference_body(ex.req.body());
  if (!info) co_return ex.fail(info.error());
  ex.model = info->model;

  auto found = co_await find_route(app, info->model);
  if (!found) co_return ex.fail(found.error());
  const RoutePtr entry = std::move(*found);  // keeps the entry alive across suspensions
  if (!entry) co_return ex.fail(model_not_found(info->model));
  if (!entry->kind || !entry->target) co_return ex.fail({errc::internal});
  auto secret = co_await provider_secret(app, entry->route.provider_id);
  if (!secret) co_return ex.fail(secret.error());

  const std::string body = core::rewrite_model(ex.req.body(), *info, entry->route.upstream_model);
  UpstreamRequest up{"POST", upstream_head(ex, *entry, *secret, body.size()), body};
  co_return co_await forward(app, ex, *entry, up);
}

net::awaitable<Response> v1_list_models(App& app, Exchange& ex) {
  // An empty hash may be a Redis that lost its data: then PostgreSQL answers (cheap, and right
  // when there really are no models).
  auto routes = co_await app.stores.all_routes();
  if (!routes || routes->empty()) routes = co_await app.routes.all();
  if (!routes) co_return ex.fail(routes.error());
  boost::json::array data;
  for (const auto& r : *routes) data.emplace_back(model_object(r));
  co_return json_response(
      200, boost::json::serialize(boost::json::object{{"object", "list"}, {"data", std::move(data)}}));
}

net::awaitable<Response> v1_get_model(App& app, Exchange& ex) {
  const std::string model(ex.params.get("model"));
  // Percent-decoded path bytes: anything that cannot be a model name (invalid UTF-8, control
  // characters, too long) is simply not found, and never reaches a cache or PostgreSQL.
  if (!core::valid_model_name(model)) co_return ex.fail(model_not_found("(invalid name)"));
  auto found = co_await find_route(app, model);
  if (!found) co_return ex.fail(found.error());
  if (!*found) co_return ex.fail(model_not_found(model));
  co_return json_response(200, boost::json::serialize(model_object((*found)->route)));
}

}  // namespace gw
