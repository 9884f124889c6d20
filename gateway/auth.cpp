#include "gateway/auth.hpp"

#include "core/keys.hpp"

namespace gw {
namespace {

using core::errc;

// Records last_used_at in the background, at most once a minute per key: never on the request's path.
void note_key_use(App& app, const std::string& hash) {
  if (app.local.touched_keys.find(hash)) return;
  app.local.touched_keys.put(hash, true);
  net::co_spawn(app.ioc, app.keys.touch_last_used(hash), net::detached);
}

KeyPtr remember(App& app, const std::string& hash, core::KeyRecord record) {
  auto key = std::make_shared<const core::KeyRecord>(std::move(record));
  app.local.good_keys.put(hash, key);
  note_key_use(app, hash);
  return key;
}

}  // namespace

std::string_view presented_key(const Request& req, Flavor flavor) noexcept {
  const auto token = core::bearer_token(req.header("authorization"));
  if (!token.empty() || flavor != Flavor::anthropic) return token;
  return req.header("x-api-key");
}

net::awaitable<core::Result<KeyPtr>> authenticate(App& app, std::string_view token) {
  if (token.empty()) co_return core::Error{errc::missing_api_key};
  std::string hash = core::sha256_hex(token);
  if (const auto* hit = app.local.good_keys.find(hash)) {
    note_key_use(app, hash);
    app.metrics.auth("local");
    co_return *hit;
  }
  if (app.local.bad_keys.find(hash)) {
    app.metrics.auth("rejected");
    co_return core::Error{errc::invalid_api_key};
  }

  auto cached = co_await app.stores.key_lookup(hash);
  if (cached && cached->record) {
    app.metrics.auth("redis");
    co_return remember(app, hash, std::move(*cached->record));
  }
  if (cached && cached->warm) {
    app.local.bad_keys.put(std::move(hash), true);  // Redis holds every key: this one does not exist
    app.metrics.auth("rejected");
    co_return core::Error{errc::invalid_api_key};
  }

  // Redis is down, or cold (restarted, flushed, not rebuilt yet): PostgreSQL decides.
  auto found = co_await app.keys.find_active(hash);
  if (!found) co_return found.error();
  if (!*found) {
    app.local.bad_keys.put(std::move(hash), true);
    app.metrics.auth("rejected");
    co_return core::Error{errc::invalid_api_key};
  }
  app.metrics.auth("database");
  // Redis answered but lacked it: put back, unless a change (a revocation, say) came in meanwhile.
  if (cached) (void)co_await app.stores.put_key_if(hash, **found, std::move(cached->generation));
  co_return remember(app, hash, std::move(**found));
}

}  // namespace gw
