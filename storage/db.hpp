#pragma once
// PostgreSQL access that never blocks an io_context: libpqxx is synchronous, so every query runs on
// a small, bounded pool of worker threads, each owning one connection, and the result is posted
// back to the awaiting coroutine's own executor. The job queue is bounded too: when the database
// falls behind, callers get errc::overloaded at once instead of an ever-growing backlog.
#include "core/result.hpp"
#include "storage/pooled_connection.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace storage {

struct DbOptions {
  std::string url;               // postgresql://... URI or key=value conninfo
  std::size_t threads = 4;       // = connections
  std::size_t max_queue = 1024;  // jobs waiting for a thread; beyond -> errc::overloaded
  std::chrono::milliseconds statement_timeout{5000};
  int connect_timeout_s = 3;
};

class Db {
 public:
  explicit Db(DbOptions options);
  ~Db();  // stop()
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Lets running jobs finish, completes queued and later jobs with errc::shutting_down, joins the
  // threads. Idempotent. Call it while the io_contexts that await results still exist, and never
  // from inside a job.
  void stop();

  // Runs fn(pqxx::connection&) -> core::Result<T> on a pool thread and resumes the awaiting
  // coroutine on its own executor. Exceptions from fn are mapped (see PooledConnection::
  // on_exception): broken connection -> db_unavailable, unique_violation -> conflict,
  // foreign_key_violation -> invalid_request, anything else -> internal (logged).
  // Name a lambda before passing it (GCC 12 miscompiles capturing lambdas written inside co_await).
  template <class T, class Fn>
  boost::asio::awaitable<core::Result<T>> run(Fn fn);

  boost::asio::awaitable<core::Status> ping();  // SELECT 1

  // Blocking; for start-up. Applies the embedded migrations not yet recorded in schema_migrations,
  // all in one transaction under an advisory lock, so concurrent gateways cannot race.
  core::Status migrate();

 private:
  class Job {
   public:
    virtual ~Job() = default;
    virtual void run(detail::PooledConnection& conn) = 0;  // on a pool thread
    virtual void fail(core::errc code) = 0;                // completes without running
  };
  template <class T, class Fn, class Handler>
  class JobFor;

  // Queues the job and returns errc::ok, or leaves it in place and returns overloaded /
  // shutting_down.
  core::errc submit(std::unique_ptr<Job>& job);
  void worker_loop();

  DbOptions options_;
  std::string conninfo_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;

  std::mutex stop_mu_;  // serialises stop() callers around join()
  std::vector<std::thread> threads_;
};

template <class T, class Fn, class Handler>
class Db::JobFor final : public Db::Job {
 public:
  JobFor(Fn fn, Handler handler)
      : fn_(std::move(fn)),
        handler_(std::move(handler)),
        // Keeps the awaiting io_context from running out of work while the query is in flight.
        work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_),
                                  boost::asio::execution::outstanding_work.tracked)) {}

  void run(detail::PooledConnection& conn) override {
    core::Result<T> result{core::errc::internal};
    try {
      result = fn_(conn.get());
    } catch (...) {
      result = conn.on_exception();
    }
    complete(std::move(result));
  }

  void fail(core::errc code) override { complete(core::Error{code}); }

 private:
  // Never invoke the handler here: this may be a pool thread; the coroutine resumes on its executor.
  void complete(core::Result<T> result) {
    auto executor = std::move(work_);
    boost::asio::post(executor, [handler = std::move(handler_), result = std::move(result)]() mutable {
      std::move(handler)(std::move(result));
    });
  }

  using WorkExecutor =
      std::decay_t<decltype(boost::asio::prefer(std::declval<boost::asio::associated_executor_t<Handler>>(),
                                                boost::asio::execution::outstanding_work.tracked))>;

  Fn fn_;
  Handler handler_;
  WorkExecutor work_;
};

template <class T, class Fn>
boost::asio::awaitable<core::Result<T>> Db::run(Fn fn) {
  auto initiation = [this](auto handler, Fn f) {
    std::unique_ptr<Job> job =
        std::make_unique<JobFor<T, Fn, decltype(handler)>>(std::move(f), std::move(handler));
    if (const core::errc code = submit(job); code != core::errc::ok) job->fail(code);
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(core::Result<T>)>(
      std::move(initiation), boost::asio::use_awaitable, std::move(fn));
}

}  // namespace storage
