#include "storage/db.hpp"

#include <pqxx/nontransaction>

#include <algorithm>

namespace storage {

Db::Db(DbOptions options)
    : options_(std::move(options)),
      conninfo_(detail::with_connect_timeout(options_.url, options_.connect_timeout_s)) {
  options_.threads = std::max<std::size_t>(options_.threads, 1);
  options_.max_queue = std::max<std::size_t>(options_.max_queue, 1);
  threads_.reserve(options_.threads);
  for (std::size_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Db::~Db() {
  stop();
}

void Db::stop() {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();

  std::deque<std::unique_ptr<Job>> leftover;
  {
    std::lock_guard lock(mu_);
    leftover.swap(queue_);
  }
  for (auto& job : leftover) job->fail(core::errc::shutting_down);
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

void Db::worker_loop() {
  // Owned by this thread for its whole life; connects on the first job.
  detail::PooledConnection conn(conninfo_, options_.statement_timeout);
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // stop() fails whatever is still queued
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job->run(conn);
  }
}

boost::asio::awaitable<core::Status> Db::ping() {
  auto probe = [](pqxx::connection& conn) -> core::Status {
    pqxx::nontransaction tx(conn);
    tx.exec1("SELECT 1");
    return core::ok();
  };
  return run<core::Unit>(std::move(probe));
}

}  // namespace storage
