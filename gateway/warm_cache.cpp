// Keeping Redis in step with PostgreSQL: the full rebuild (start-up, every Redis reconnect), the
// updates after admin writes, and recovery when such an update could not be written.
#include "core/log.hpp"
#include "gateway/app.hpp"

namespace gw {
namespace {

bool note_failure(const core::Status& s, std::string_view what) {
  if (!s) core::log::warn("cache update failed", {{"op", what}, {"error", core::to_string(s.error().code)}});
  return !s;
}

}  // namespace

net::awaitable<void> App::refresh_routes() {
  change_local_caches([](LocalCaches& l) { l.routes.clear(); });
  // Another replica's change (or rebuild) landing between our read and our swap makes the swap
  // refuse: read again. Losing three times in a row hands over to the rebuild loop.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto gen = co_await stores.routes_generation();
    if (!gen) break;
    auto all = co_await routes.all();
    if (!all) {
      note_failure(all.error(), "load_routes");
      co_return;
    }
    auto swapped = co_await stores.replace_routes(std::move(*all), std::move(*gen));
    if (!swapped) break;
    if (*swapped) {
      note_failure(co_await stores.publish("routes"), "publish");
      co_return;
    }
  }
  core::log::warn("cache update failed", {{"op", "replace_routes"}});
  cache_write_failed("replace_routes");
}

net::awaitable<void> App::key_changed(std::string hash) {
  // Every worker at once, even when Redis is down.
  change_local_caches([message = "key:" + hash](LocalCaches& l) { l.invalidate(message); });
  auto found = co_await keys.find_active(hash);
  core::Status written = core::ok();
  if (!found)
    written = found.error();
  else if (*found)
    written = co_await stores.put_key(hash, **found);
  else
    written = co_await stores.remove_key(hash);
  if (note_failure(written, "key")) cache_write_failed("key");
  note_failure(co_await stores.publish("key:" + hash), "publish");
}

net::awaitable<core::Status> App::seed_budgets() {
  // What budgets have used, for a Redis that lost it (restarted empty): Redis keeps what it has,
  // being ahead of PostgreSQL (which the log writer feeds in batches).
  auto usages = co_await keys.budget_usages();
  if (!usages) co_return usages.error();
  std::vector<cache::Limiter::UsedSeed> seeds;
  seeds.reserve(usages->size());
  for (auto& [id, tokens, micro_usd] : *usages) seeds.push_back({std::move(id), tokens, micro_usd});
  co_return co_await limits.shared.seed_used(std::move(seeds), false);
}

net::awaitable<core::Status> App::budget_changed(const core::UserKey& key, bool reset) {
  const bool budgeted = key.limits.token_budget || key.limits.budget_usd;
  if (reset || !budgeted) co_return co_await limits.shared.reset_used(key.id, budgeted);  // anew, or dropped
  // A key that gets a budget: Redis did not count it so far (it counts only budgeted keys).
  auto used = co_await keys.budget_usage(key.id);
  if (!used) co_return used.error();
  std::vector<cache::Limiter::UsedSeed> seed{{key.id, used->first, used->second}};
  co_return co_await limits.shared.seed_used(std::move(seed), false);
}

net::awaitable<void> App::warm_cache() {
  // Until every step succeeded, Redis must not answer "no such key" on its own: a stale or partial
  // hash would refuse valid keys. Any failure leaves it cold and schedules another attempt.
  auto failed = [this](const core::Status& s, std::string_view what) {
    if (!note_failure(s, what)) return false;
    cache_write_failed(what);
    return true;
  };
  // A swap refused because a change came in after the generation was read: the next attempt
  // (a second later, Redis cold meanwhile) reads PostgreSQL again.
  auto lost = [&](const core::Result<bool>& swapped, std::string_view what) {
    if (failed(core::status_of(swapped), what)) return true;
    if (*swapped) return false;
    core::log::info("a change came in while redis was rebuilt; rebuilding again", {{"op", what}});
    cache_write_failed(what);
    return true;
  };
  if (failed(co_await stores.mark_cold(), "mark_cold")) co_return;
  auto keys_gen = co_await stores.keys_generation();  // before the snapshot: see cache/stores.hpp
  if (failed(core::status_of(keys_gen), "load_keys")) co_return;
  auto records = co_await keys.active_records();
  if (failed(core::status_of(records), "load_keys")) co_return;
  if (lost(co_await stores.replace_keys(std::move(*records), std::move(*keys_gen)), "replace_keys"))
    co_return;
  auto routes_gen = co_await stores.routes_generation();
  if (failed(core::status_of(routes_gen), "load_routes")) co_return;
  auto all = co_await routes.all();
  if (failed(core::status_of(all), "load_routes")) co_return;
  if (lost(co_await stores.replace_routes(std::move(*all), std::move(*routes_gen)), "replace_routes"))
    co_return;
  if (failed(co_await seed_budgets(), "seed_budgets")) co_return;
  if (failed(co_await stores.mark_warm(), "mark_warm")) co_return;
  note_failure(co_await stores.publish("routes"), "publish");
  local.clear_redis_views();
  rewarm_pending_ = false;
  core::log::info("cache warmed");
}

void App::change_local_caches(std::function<void(LocalCaches&)> change) {
  change(local);
  for (App* other : shared.workers)
    if (other != this) net::post(other->ioc, [other, change] { change(other->local); });
}

void App::cache_write_failed(std::string_view what) {
  if (std::exchange(rewarm_pending_, true) || draining) return;
  core::log::warn("redis may disagree with postgresql; rebuilding it", {{"after", what}});
  net::co_spawn(ioc, rewarm_until_done(), net::detached);
}

net::awaitable<void> App::rewarm_until_done() {
  net::steady_timer pause(ioc);
  while (rewarm_pending_ && !draining) {
    // Until the rebuild succeeds, at least stop Redis from answering "no such key" on its own.
    (void)co_await stores.mark_cold();
    pause.expires_after(std::chrono::seconds(1));
    co_await pause.async_wait(use_tuple);
    if (rewarm_pending_ && !draining) co_await warm_cache();
  }
  rewarm_pending_ = false;
}

}  // namespace gw
