#include "gateway/lookup.hpp"

#include "core/admin_json.hpp"
#include "core/crypto.hpp"
#include "core/log.hpp"

namespace gw {

using core::errc;

net::awaitable<core::Result<ModelPtr>> find_model(App& app, const std::string& model) {
  if (const auto* hit = app.local.routes.find(model)) co_return *hit;
  auto cached = co_await app.stores.route(model);
  if (cached && cached->routes) {
    auto entry = make_model_entry(std::move(*cached->routes));
    app.local.routes.put(model, entry);
    co_return entry;
  }
  auto stored = co_await app.routes.find(model);
  if (!stored) co_return stored.error();
  if (!*stored) {
    app.local.routes.put(model, nullptr);
    co_return ModelPtr{};
  }
  // Redis answered but had lost it: put back, unless a change came in meanwhile (it may be older).
  if (cached) (void)co_await app.stores.put_route_if(**stored, std::move(cached->generation));
  auto entry = make_model_entry(std::move(**stored));
  app.local.routes.put(model, entry);
  co_return entry;
}

net::awaitable<core::Result<SecretsPtr>> provider_secrets(App& app, const std::string& provider_id) {
  if (const auto* hit = app.local.secrets.find(provider_id)) co_return *hit;
  auto sealed = co_await app.providers.secret(provider_id);
  if (!sealed) {
    const bool unreachable = sealed.error().code == errc::db_unavailable || sealed.error().code == errc::overloaded;
    if (SecretsPtr stale = unreachable ? app.shared.secrets_fallback.find(provider_id) : nullptr) {
      app.local.secrets.put(provider_id, stale);  // the next requests do not wait for PostgreSQL again
      co_return stale;
    }
    co_return sealed.error();
  }
  auto secrets = std::make_shared<core::ProviderSecrets>();
  auto fail = [&] {
    core::log::error("cannot decrypt a provider's credentials (was ENCRYPTION_KEY changed?)",
                     {{"provider_id", provider_id}});
    return core::Error{errc::internal};
  };
  if (!sealed->api_key_enc.empty()) {
    auto opened = core::open(app.cfg.encryption_key, sealed->api_key_enc);
    if (!opened) co_return fail();
    secrets->api_key = std::move(*opened);
  }
  if (!sealed->extra_headers_enc.empty()) {
    auto opened = core::open(app.cfg.encryption_key, sealed->extra_headers_enc);
    auto headers = opened ? core::decode_headers(*opened) : std::nullopt;
    if (!headers) co_return fail();
    secrets->extra_headers = std::move(*headers);
  }
  SecretsPtr out = std::move(secrets);
  app.local.secrets.put(provider_id, out);
  app.shared.secrets_fallback.put(provider_id, out);
  co_return out;
}

}  // namespace gw
