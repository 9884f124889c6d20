#include "storage/db.hpp"

#include "core/thread_name.hpp"

#include <pqxx/nontransaction>

#include <algorithm>

namespace storage {

Db::Db(DbOptions options)
    : options_(std::move(options)),
      conninfo_(detail::pool_conninfo(options_.url, options_.connect_timeout_s)) {
  options_.threads = std::max<std::size_t>(options_.threads, 1);
  options_.max_queue = std::max<std::size_t>(options_.max_queue, 1);
  connections_.reserve(options_.threads);
  threads_.reserve(options_.threads);
  for (std::size_t i = 0; i < options_.threads; ++i) {
    auto& conn = connections_.emplace_back(
        std::make_unique<detail::PooledConnection>(conninfo_, options_.statement_timeout));
    threads_.emplace_back([this, &conn = *conn] {
      core::name_this_thread("llmgw-db");
      worker_loop(conn);
    });
  }
}

Db::~Db() {
  stop();
}

void Db::request_stop() {
  std::deque<std::unique_ptr<Job>> queued;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queued.swap(queue_);
  }
  cv_.notify_all();
  for (auto& job : queued) job->fail(core::errc::shutting_down);
}

void Db::stop(std::chrono::milliseconds grace) {
  request_stop();
  std::lock_guard stop_lock(stop_mu_);
  if (threads_.empty()) return;
  if (!wait_until_idle(grace)) {
    // The server hangs: nothing else would ever end these queries (no server-side timeout fires
    // in a stopped process, keepalives are answered by a live kernel).
    detail::log_db_event("warn", "db stop: interrupting queries still running", "");
    for (auto& conn : connections_) conn->interrupt();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

bool Db::wait_until_idle(std::chrono::milliseconds grace) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, grace, [this] { return busy_ == 0; });
}

core::errc Db::submit(std::unique_ptr<Job>& job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return core::errc::shutting_down;
    if (queue_.size() >= options_.max_queue) return core::errc::overloaded;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return core::errc::ok;
}

void Db::worker_loop(detail::PooledConnection& conn) {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // request_stop() has failed whatever was queued
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    job->run(conn);
    job.reset();  // fn's captures go before stop() may return
    {
      std::lock_guard lock(mu_);
      --busy_;
    }
    idle_cv_.notify_all();
  }
}

detail::Ticket::Clock::time_point Db::deadline_from_now() const {
  if (options_.statement_timeout <= std::chrono::milliseconds::zero()) {
    return detail::Ticket::Clock::time_point::max();
  }
  return detail::Ticket::Clock::now() + options_.statement_timeout;
}

boost::asio::awaitable<core::Status> Db::ping() {
  auto probe = [](pqxx::connection& conn) -> core::Status {
    pqxx::nontransaction tx(conn);
    tx.exec1("SELECT 1");
    return core::ok();
  };
  return read<core::Unit>(std::move(probe));
}

}  // namespace storage
