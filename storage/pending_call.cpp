#include "storage/pending_call.hpp"

#include <boost/asio/post.hpp>

namespace storage::detail {

Ticket::Ticket(boost::asio::any_io_executor executor, std::weak_ptr<boost::asio::steady_timer> waiter,
               Clock::time_point deadline)
    : executor_(std::move(executor)), waiter_(std::move(waiter)), deadline_(deadline) {}

bool Ticket::claim() {
  std::lock_guard lock(mu_);
  if (phase_ != Phase::queued || Clock::now() >= deadline_) return false;
  phase_ = Phase::running;
  return true;
}

bool Ticket::wanted() {
  std::lock_guard lock(mu_);
  return phase_ == Phase::running && Clock::now() < deadline_;
}

void Ticket::abandon() noexcept {
  std::lock_guard lock(mu_);
  release_locked();
}

bool Ticket::waiting_locked() const noexcept {
  return phase_ == Phase::queued || phase_ == Phase::running;
}

void Ticket::wake_locked() {
  phase_ = Phase::done;
  // Only the timer is touched, through a weak_ptr: the caller may have timed out and returned
  // before this runs. expires_after(0) rather than cancel(): a wake-up that arrives before the
  // wait has begun is not lost.
  boost::asio::post(executor_, [waiter = waiter_] {
    if (const auto timer = waiter.lock()) timer->expires_after(Clock::duration::zero());
  });
}

void Ticket::release_locked() noexcept {
  if (phase_ != Phase::done) phase_ = Phase::abandoned;
  executor_ = boost::asio::any_io_executor();
}

}  // namespace storage::detail
