#include "gateway/worker.hpp"

#include "core/log.hpp"
#include "gateway/server.hpp"

#include <sys/socket.h>

namespace gw {
namespace {

using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

net::awaitable<void> wait_for_sessions(App& app, Clock::time_point until) {
  net::steady_timer tick(app.ioc);
  while (!app.sessions.empty() && Clock::now() < until) {
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(use_tuple);
  }
}

}  // namespace

Worker::Worker(Shared& shared, std::size_t index, const cache::RedisOptions& redis)
    : redis_(std::make_shared<cache::RedisClient>(ioc_.get_executor(), redis)),
      app_(shared, ioc_, redis_),
      acceptor_(ioc_) {
  app_.worker_index = index;
  // Every (re)connect to Redis rebuilds it from PostgreSQL (a restarted, empty Redis refills): one
  // worker does it for the process; the others' caches are dropped when their subscriptions are
  // re-established, and by the "routes" message the rebuild publishes.
  if (index == 0) redis_->on_connected([this] { net::co_spawn(ioc_, app_.warm_cache(), net::detached); });
  auto on_message = [this](std::string_view m) { app_.local.invalidate(m); };
  auto on_resubscribed = [this] { app_.local.clear(); };
  subscriber_ = std::make_shared<cache::RedisSubscriber>(ioc_.get_executor(), redis, app_.stores.channel(),
                                                         on_message, on_resubscribed);
}

error_code Worker::listen(const tcp::endpoint& endpoint) {
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.set_option(reuse_port(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  return ec;
}

tcp::endpoint Worker::local_endpoint() const {
  error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Worker::start() {
  redis_->start();
  subscriber_->start();
  net::co_spawn(ioc_, accept_loop(app_, acceptor_), net::detached);
  net::co_spawn(ioc_, app_.limits.maintain(redis_, app_.cfg.redis_prefix), net::detached);
}

void Worker::shutdown(ShutdownCoordinator& coordinator) {
  net::post(ioc_, [this, &coordinator] { net::co_spawn(ioc_, drain(coordinator), net::detached); });
}

// Stop accepting, let busy requests finish within the grace period, then cut what is left. Once
// every worker got that far the database pool stops (so a session stuck on PostgreSQL ends);
// this worker's Redis, subscriber and timers stop now. The io_context then runs out of work and
// run() returns: every coroutine frame is gone before anything is destroyed.
net::awaitable<void> Worker::drain(ShutdownCoordinator& coordinator) {
  error_code ec;
  acceptor_.close(ec);
  begin_drain(app_);
  co_await wait_for_sessions(app_, Clock::now() + to_steady(app_.cfg.shutdown_grace));
  if (!app_.sessions.empty()) {
    core::log::warn("grace period over, closing busy connections",
                    {{"worker", app_.worker_index}, {"open", app_.sessions.size()}});
    force_close(app_);
  }
  coordinator.worker_drained();
  stop_background();
  co_await wait_for_sessions(app_, Clock::time_point::max());
  app_.serving = false;
}

void Worker::stop_background() {
  app_.limits.stop();
  redis_->stop();  // Redis waits fail at once
  subscriber_->stop();
  app_.upstream.close_idle();
}

}  // namespace gw
