// Admin API: thin handlers. Validation lives in core/admin_json, persistence in storage/, cache
// updates in cache/. Order for every write: PostgreSQL first (the truth), then Redis, then an
// invalidation message so every replica drops what it cached in process.
#include "core/admin_json.hpp"
#include "core/crypto.hpp"
#include "core/keys.hpp"
#include "core/log.hpp"
#include "gateway/handlers.hpp"
#include "providers/provider.hpp"

#include <boost/url/parse.hpp>

namespace gw {
namespace {

using core::errc;

core::Result<std::string> id_param(const Exchange& ex) {
  std::string id(ex.params.get("id"));
  if (!core::is_uuid(id)) return core::Error{errc::invalid_request, "The id must be a UUID.", "id"};
  return id;
}

bool query_flag(const Request& req, std::string_view name) {
  auto u = boost::urls::parse_origin_form(req.target());
  if (!u) return false;
  auto it = u->params().find(name);
  return it != u->params().end() && (*it).value == "true";
}

// Renders a repository result: the value with `ok`, or the error.
template <class T, class Render>
Response reply(const Exchange& ex, const core::Result<T>& r, unsigned ok, Render render) {
  if (!r) return ex.fail(r.error());
  return json_response(ok, render(*r));
}

Response no_content(const Exchange& ex, const core::Status& s) {
  if (!s) return ex.fail(s.error());
  return empty_response(204);
}

core::Status check_kind(const std::string& kind) {
  if (!providers::find_kind(kind))
    return core::Error{errc::invalid_request, "Unknown provider kind '" + kind + "'.", "kind"};
  return core::ok();
}

void note_cache_failure(const core::Status& s, std::string_view what) {
  if (!s) core::log::warn("cache update failed", {{"op", what}, {"error", core::to_string(s.error().code)}});
}

#define TRY_OR_RESPOND(var, expr) \
  auto var = (expr);              \
  if (!var) co_return ex.fail(std::move(var).error())

}  // namespace

// ---- providers ----

net::awaitable<Response> admin_create_provider(App& app, Exchange& ex) {
  TRY_OR_RESPOND(in, core::parse_provider_create(ex.req.body()));
  TRY_OR_RESPOND(kind_ok, check_kind(in->kind));
  const auto default_url = providers::find_kind(in->kind)->default_base_url;
  if (!in->base_url && default_url.empty())
    co_return ex.fail({errc::invalid_request, "Kind '" + in->kind + "' needs a 'base_url'.", "base_url"});
  core::NewProvider p;
  p.name = in->name;
  p.kind = in->kind;
  p.base_url = in->base_url.value_or(std::string(default_url));
  p.api_version = in->api_version;
  p.limits = in->limits;
  if (in->api_key) {
    p.api_key_enc = core::seal(app.cfg.encryption_key, *in->api_key);
    p.api_key_preview = core::mask_secret(*in->api_key);
  }
  if (in->extra_headers && !in->extra_headers->empty()) {
    p.extra_headers_enc = core::seal(app.cfg.encryption_key, core::encode_headers(*in->extra_headers));
    for (const auto& h : *in->extra_headers) p.extra_header_names.push_back(h.first);
  }
  auto created = co_await app.providers.create(std::move(p));
  co_return reply(ex, created, 201, [](auto& v) { return core::to_json(v); });
}

net::awaitable<Response> admin_list_providers(App& app, Exchange& ex) {
  auto all = co_await app.providers.list();
  co_return reply(ex, all, 200, [](auto& v) { return core::providers_json(v); });
}

net::awaitable<Response> admin_get_provider(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto p = co_await app.providers.get(*id);
  co_return reply(ex, p, 200, [](auto& v) { return core::to_json(v); });
}

net::awaitable<Response> admin_update_provider(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  TRY_OR_RESPOND(in, core::parse_provider_update(ex.req.body()));
  if (in->kind) {
    TRY_OR_RESPOND(kind_ok, check_kind(*in->kind));
  }
  core::ProviderPatch patch;
  patch.name = in->name;
  patch.kind = in->kind;
  patch.base_url = in->base_url;
  patch.is_active = in->is_active;
  patch.api_version = in->api_version;
  patch.rpm = in->rpm;
  patch.rpd = in->rpd;
  if (in->api_key) {
    patch.api_key_enc = core::seal(app.cfg.encryption_key, *in->api_key);
    patch.api_key_preview = core::mask_secret(*in->api_key);
  }
  if (in->extra_headers) {  // replaces the whole set; {} or null removes them
    std::vector<std::string> names;
    for (const auto& h : *in->extra_headers) names.push_back(h.first);
    patch.extra_headers_enc =
        in->extra_headers->empty() ? std::string() : core::seal(app.cfg.encryption_key, core::encode_headers(*in->extra_headers));
    patch.extra_header_names = std::move(names);
  }
  auto updated = co_await app.providers.update(*id, std::move(patch));
  if (updated) {
    app.change_local_caches([message = "provider:" + *id](LocalCaches& l) { l.invalidate(message); });
    note_cache_failure(co_await app.stores.publish("provider:" + *id), "publish");
    co_await app.refresh_routes();
  }
  co_return reply(ex, updated, 200, [](auto& v) { return core::to_json(v); });
}

net::awaitable<Response> admin_delete_provider(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto removed = co_await app.providers.remove(*id, query_flag(ex.req, "force"));
  if (!removed) co_return ex.fail(removed.error());
  app.change_local_caches([message = "provider:" + *id](LocalCaches& l) { l.invalidate(message); });
  note_cache_failure(co_await app.stores.publish("provider:" + *id), "publish");
  co_await app.refresh_routes();
  co_return empty_response(204);
}

// ---- models ----

net::awaitable<Response> admin_create_model(App& app, Exchange& ex) {
  TRY_OR_RESPOND(in, core::parse_model_create(ex.req.body()));
  // Named first: GCC 12 frees a braced temporary inside a co_await expression twice.
  core::NewModel model{std::move(in->name), std::move(in->provider_id), std::move(in->provider_model_name),
                       in->strategy, in->pricing};
  auto created = co_await app.models.create(std::move(model));
  if (created) co_await app.refresh_routes();
  co_return reply(ex, created, 201, [](auto& v) { return core::to_json(v); });
}

net::awaitable<Response> admin_list_models(App& app, Exchange& ex) {
  auto all = co_await app.models.list();
  co_return reply(ex, all, 200, [](auto& v) { return core::models_json(v); });
}

net::awaitable<Response> admin_get_model(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto m = co_await app.models.get(*id);
  co_return reply(ex, m, 200, [](auto& v) { return core::to_json(v); });
}

net::awaitable<Response> admin_update_model(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  TRY_OR_RESPOND(patch, core::parse_model_update(ex.req.body()));
  auto updated = co_await app.models.update(*id, std::move(*patch));
  if (updated) co_await app.refresh_routes();
  co_return reply(ex, updated, 200, [](auto& v) { return core::to_json(v.first); });
}

net::awaitable<Response> admin_delete_model(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto removed = co_await app.models.remove(*id);
  if (removed) co_await app.refresh_routes();
  co_return no_content(ex, core::status_of(removed));
}

// ---- user keys ----

net::awaitable<Response> admin_create_key(App& app, Exchange& ex) {
  TRY_OR_RESPOND(in, core::parse_key_create(ex.req.body()));
  const std::string key = core::generate_user_key();
  const std::string hash = core::sha256_hex(key);
  auto created = co_await app.keys.create(std::move(*in), hash, core::key_prefix(key));
  if (created) co_await app.key_changed(hash);
  co_return reply(ex, created, 201,
                  [&](auto& v) { return core::to_json_with_secret(v, key); });
}

net::awaitable<Response> admin_list_keys(App& app, Exchange& ex) {
  auto all = co_await app.keys.list();
  co_return reply(ex, all, 200, [](auto& v) { return core::keys_json(v); });
}

net::awaitable<Response> admin_get_key(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto k = co_await app.keys.get(*id);
  if (!k) co_return ex.fail(k.error());
  std::string body = co_await with_key_usage(app, core::to_json(*k), *k);
  co_return json_response(200, std::move(body));
}

net::awaitable<Response> admin_update_key(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  TRY_OR_RESPOND(patch, core::parse_key_update(ex.req.body()));
  const bool reset = patch->reset_usage;
  const auto& l = patch->limits;
  const bool budget_touched = reset || l.token_budget || l.budget_usd;
  auto updated = co_await app.keys.update(*id, std::move(*patch));
  if (!updated) co_return ex.fail(updated.error());
  co_await app.key_changed(updated->second);
  if (budget_touched) {
    // PostgreSQL has the change; Redis, which admits requests, must follow or the admin hears so
    // (the same PUT again is safe).
    if (auto s = co_await app.budget_changed(updated->first, reset); !s)
      co_return ex.fail({errc::cache_unavailable,
                         "The key was updated, but its budget counters in Redis could not be; retry the request."});
  }
  co_return reply(ex, updated, 200, [](auto& v) { return core::to_json(v.first); });
}

net::awaitable<Response> admin_rotate_key(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  const std::string key = core::generate_user_key();
  const std::string hash = core::sha256_hex(key);
  auto rotated = co_await app.keys.rotate(*id, hash, core::key_prefix(key));
  if (rotated) {
    co_await app.key_changed(rotated->second);  // the old key stops working now
    co_await app.key_changed(hash);
  }
  co_return reply(ex, rotated, 200,
                  [&](auto& v) { return core::to_json_with_secret(v.first, key); });
}

net::awaitable<Response> admin_delete_key(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto revoked = co_await app.keys.revoke(*id);
  if (revoked) co_await app.key_changed(*revoked);
  co_return no_content(ex, core::status_of(revoked));
}

}  // namespace gw

namespace gw {

// ---- routes of a model ----

namespace {

Response model_reply(const Exchange& ex, const core::Result<core::Model>& m, unsigned ok) {
  return reply(ex, m, ok, [](auto& v) { return core::to_json(v); });
}

core::Result<std::string> route_id_param(const Exchange& ex) {
  std::string id(ex.params.get("route_id"));
  if (!core::is_uuid(id)) return core::Error{errc::invalid_request, "The route id must be a UUID.", "route_id"};
  return id;
}

}  // namespace

net::awaitable<Response> admin_list_routes(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  auto m = co_await app.models.get(*id);
  if (!m) co_return ex.fail(m.error());
  core::Model only_routes = std::move(*m);
  co_return json_response(200, core::routes_json(only_routes.routes));
}

net::awaitable<Response> admin_create_route(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  TRY_OR_RESPOND(in, core::parse_route_create(ex.req.body()));
  auto updated = co_await app.models.add_route(*id, std::move(*in));
  if (updated) co_await app.refresh_routes();
  co_return model_reply(ex, updated, 201);
}

net::awaitable<Response> admin_update_route(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  TRY_OR_RESPOND(route_id, route_id_param(ex));
  TRY_OR_RESPOND(patch, core::parse_route_update(ex.req.body()));
  auto updated = co_await app.models.update_route(*id, *route_id, std::move(*patch));
  if (updated) co_await app.refresh_routes();
  co_return model_reply(ex, updated, 200);
}

net::awaitable<Response> admin_delete_route(App& app, Exchange& ex) {
  TRY_OR_RESPOND(id, id_param(ex));
  TRY_OR_RESPOND(route_id, route_id_param(ex));
  auto updated = co_await app.models.remove_route(*id, *route_id);
  if (updated) co_await app.refresh_routes();
  co_return model_reply(ex, updated, 200);
}

}  // namespace gw
