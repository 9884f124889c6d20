#pragma once
// What a pool job shares with the coroutine awaiting it (see Db::run). The caller waits on a timer
// set to its deadline; the pool stores the result here and wakes that timer early. The caller may
// give up at any moment (deadline, cancellation, its frame destroyed with its io_context), and
// from then on the pool must neither start the job nor touch the caller's executor, so every
// hand-over happens under one small mutex.
#include "core/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace storage::detail {

// A named completion token: GCC 12 mishandles temporaries built inside a co_await expression.
inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

class Ticket {
 public:
  using Clock = std::chrono::steady_clock;

  // `waiter` is the caller's timer, owned by its coroutine frame; `executor` is that timer's.
  Ticket(boost::asio::any_io_executor executor, std::weak_ptr<boost::asio::steady_timer> waiter,
         Clock::time_point deadline);

  // Pool side, before running the job: true (and the job now counts as running) unless the caller
  // has given up or the deadline has passed while the job was queued. Then it must not run at all.
  bool claim();
  // Pool side, before a retry: the caller still waits and there is time left.
  bool wanted();

  // Caller side, idempotent: from now on the pool discards the result.
  void abandon() noexcept;

 protected:
  // Under mu_: whether the caller still waits for a result.
  bool waiting_locked() const noexcept;
  // Under mu_, once the result is stored: marks it done and wakes the caller.
  void wake_locked();
  // Under mu_, caller side: the pool will not post to the executor any more; let go of it here,
  // on the caller's thread (destroying, say, a strand executor needs its io_context alive).
  void release_locked() noexcept;

  std::mutex mu_;

 private:
  enum class Phase { queued, running, done, abandoned };

  Phase phase_ = Phase::queued;
  boost::asio::any_io_executor executor_;
  std::weak_ptr<boost::asio::steady_timer> waiter_;
  const Clock::time_point deadline_;
};

template <class T>
class PendingCall final : public Ticket {
 public:
  using Ticket::Ticket;

  // Pool side; a result nobody waits for any more is dropped.
  void complete(core::Result<T> result) {
    std::lock_guard lock(mu_);
    if (!waiting_locked()) return;
    result_.emplace(std::move(result));
    wake_locked();
  }

  // Caller side, once its timer wait is over: the result, or db_unavailable when there is none
  // (the deadline passed or the wait was cancelled); the job's outcome no longer matters then.
  core::Result<T> take() {
    std::lock_guard lock(mu_);
    release_locked();
    if (result_) return std::move(*result_);
    return core::errc::db_unavailable;
  }

 private:
  std::optional<core::Result<T>> result_;
};

// Abandons the ticket however the awaiting frame ends, including being destroyed while suspended.
class AbandonOnExit {
 public:
  explicit AbandonOnExit(Ticket& ticket) : ticket_(ticket) {}
  ~AbandonOnExit() { ticket_.abandon(); }
  AbandonOnExit(const AbandonOnExit&) = delete;
  AbandonOnExit& operator=(const AbandonOnExit&) = delete;

 private:
  Ticket& ticket_;
};

}  // namespace storage::detail
