#pragma once
// PostgreSQL access that never blocks an io_context: libpqxx is synchronous, so every query runs on
// a small, bounded pool of worker threads, each owning one connection, and the result is handed
// back to the awaiting coroutine on its own executor. The job queue is bounded too: when the
// database falls behind, callers get errc::overloaded at once instead of an ever-growing backlog.
//
// The caller's wait is bounded on the caller's side: a server that hangs without closing anything
// (SIGSTOPped, behind a network black hole) cannot answer its own statement_timeout, so the
// coroutine resumes with errc::db_unavailable at its deadline however the query fares. The pool
// does not keep the caller's io_context busy meanwhile: only that coroutine's timer does.
#include "core/histogram.hpp"
#include "core/result.hpp"
#include "storage/pending_call.hpp"
#include "storage/pooled_connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace storage {

struct DbOptions {
  std::string url;               // postgresql://... URI or key=value conninfo
  std::size_t threads = 4;       // = connections
  std::size_t max_queue = 1024;  // jobs waiting for a thread; beyond -> errc::overloaded
  // Per call, from submission: time in the queue + execution (client side), and the server's
  // statement_timeout on every pooled connection. Zero or less: no deadline.
  std::chrono::milliseconds statement_timeout{5000};
  int connect_timeout_s = 3;
};

class Db {
 public:
  explicit Db(DbOptions options);
  ~Db();  // stop()
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Does not block: later jobs are refused with errc::shutting_down, and so are the queued ones, at
  // once. Jobs already running go on.
  void request_stop();

  // request_stop(), then waits up to `grace` for the running jobs; queries still running after it
  // (a hung server) are made to fail by shutting their sockets down. Then joins the threads. A
  // worker in the middle of connecting can still take up to connect_timeout_s. Idempotent; call it
  // from any thread but a pool thread (never from inside a job).
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  // Runs fn(pqxx::connection&) -> core::Result<T> once on a pool thread and resumes the awaiting
  // coroutine on its own executor, at the deadline (statement_timeout) at the latest:
  //   - a job still queued at its deadline is never executed;
  //   - a result that comes after the caller gave up is discarded.
  // Exceptions from fn are mapped (see PooledConnection::classify_exception): broken connection ->
  // db_unavailable, unique_violation -> conflict, foreign_key_violation -> invalid_request,
  // anything else -> internal (logged). For writes: a write is never retried.
  //
  // fn may outlive its caller (the caller stops waiting at its deadline, the query goes on), so it
  // must own what it uses: capture by value. The pool touches a caller's executor only while that
  // caller still waits (a frame destroyed while suspended withdraws its call first), so an
  // io_context may be stopped or destroyed while jobs of callers that have given up still run.
  // Destroying an io_context while calls on it still wait races with the pool delivering into it:
  // stop() the Db first then (gateway/main does: ioc.run(); db.stop(); then ~io_context).
  // The awaiting coroutine's executor must be serialised (an io_context run by one thread, or a
  // strand), as the gateway's is.
  // Name a lambda before passing it (GCC 12 miscompiles capturing lambdas written inside co_await).
  template <class T, class Fn>
  boost::asio::awaitable<core::Result<T>> run(Fn fn) {
    return execute<T>(std::move(fn), Attempts::once);
  }

  // run() for idempotent jobs (reads): when the job fails because its pooled session turned out to
  // be dead (the server restarted, the link broke while idle), it runs once more on a new
  // connection, within the same deadline. fn is called again then, so it must not consume its
  // captures.
  template <class T, class Fn>
  boost::asio::awaitable<core::Result<T>> read(Fn fn) {
    return execute<T>(std::move(fn), Attempts::retry_lost_session);
  }

  boost::asio::awaitable<core::Status> ping();  // SELECT 1, as a read

  // For metrics, from any thread: calls that failed (any error but conflict / not_found /
  // invalid_request, which are answers) and the latency of every call, queue wait included.
  std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }
  core::Histogram latency() const noexcept { return latency_.snapshot(); }

  // Blocking; for start-up. Applies the embedded migrations not yet recorded in schema_migrations,
  // all in one transaction under an advisory lock, so concurrent gateways cannot race.
  core::Status migrate();

 private:
  enum class Attempts { once, retry_lost_session };

  class Job {
   public:
    virtual ~Job() = default;
    virtual void run(detail::PooledConnection& conn) = 0;  // on a pool thread
    virtual void fail(core::errc code) = 0;                // completes without running
  };
  template <class T, class Fn>
  class JobFor;

  template <class T, class Fn>
  boost::asio::awaitable<core::Result<T>> execute(Fn fn, Attempts attempts);
  detail::Ticket::Clock::time_point deadline_from_now() const;

  // Queues the job and returns errc::ok, or leaves it in place and returns overloaded /
  // shutting_down.
  core::errc submit(std::unique_ptr<Job>& job);
  void worker_loop(detail::PooledConnection& conn);
  bool wait_until_idle(std::chrono::milliseconds grace);

  DbOptions options_;
  std::string conninfo_;
  std::vector<std::unique_ptr<detail::PooledConnection>> connections_;  // one per thread

  std::mutex mu_;
  std::condition_variable cv_;       // workers: a job was queued, or stop
  std::condition_variable idle_cv_;  // stop(): a worker finished its job
  std::deque<std::unique_ptr<Job>> queue_;
  std::size_t busy_ = 0;  // workers running a job
  bool stopping_ = false;

  std::atomic<std::uint64_t> failures_{0};
  core::AtomicHistogram latency_;

  std::mutex stop_mu_;  // serialises stop() callers around join()
  std::vector<std::thread> threads_;
};

template <class T, class Fn>
class Db::JobFor final : public Db::Job {
 public:
  JobFor(Fn fn, std::shared_ptr<detail::PendingCall<T>> call, Attempts attempts)
      : fn_(std::move(fn)), call_(std::move(call)), attempts_(attempts) {}

  void run(detail::PooledConnection& conn) override {
    if (!call_->claim()) return;  // the caller has given up, or its deadline passed in the queue
    Attempt first = attempt(conn);
    if (first.session_was_stale && attempts_ == Attempts::retry_lost_session && call_->wanted()) {
      call_->complete(attempt(conn).result);
      return;
    }
    call_->complete(std::move(first.result));
  }

  void fail(core::errc code) override { call_->complete(code); }

 private:
  struct Attempt {
    core::Result<T> result;
    bool session_was_stale = false;  // a session from before this attempt turned out dead
  };

  Attempt attempt(detail::PooledConnection& conn) {
    try {
      return Attempt{fn_(conn.get())};
    } catch (...) {
      auto failure = conn.classify_exception();
      return Attempt{std::move(failure.error), failure.session_lost && !conn.fresh()};
    }
  }

  Fn fn_;
  std::shared_ptr<detail::PendingCall<T>> call_;
  Attempts attempts_;
};

template <class T, class Fn>
boost::asio::awaitable<core::Result<T>> Db::execute(Fn fn, Attempts attempts) {
  const auto executor = co_await boost::asio::this_coro::executor;
  const auto deadline = deadline_from_now();
  auto waiter = std::make_shared<boost::asio::steady_timer>(executor, deadline);
  auto call = std::make_shared<detail::PendingCall<T>>(executor, waiter, deadline);
  const detail::AbandonOnExit abandon_on_exit(*call);
  std::unique_ptr<Job> job = std::make_unique<JobFor<T, Fn>>(std::move(fn), call, attempts);
  if (const core::errc code = submit(job); code != core::errc::ok) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    co_return code;
  }
  // Ends at the deadline, or early when the pool delivers (error code operation_aborted then).
  const auto started = detail::Ticket::Clock::now();
  co_await waiter->async_wait(detail::use_tuple);
  auto result = call->take();
  latency_.observe(std::chrono::duration<double>(detail::Ticket::Clock::now() - started).count());
  if (!result) {
    const auto code = result.error().code;
    if (code != core::errc::conflict && code != core::errc::not_found && code != core::errc::invalid_request)
      failures_.fetch_add(1, std::memory_order_relaxed);
  }
  co_return result;
}

}  // namespace storage
