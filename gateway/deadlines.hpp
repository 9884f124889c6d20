#pragma once
// Deadlines for socket operations, one sweeper per worker (the nginx / Envoy approach): arming a
// deadline stores a time point, nothing more; a single timer ticks every kTick and cancels the
// pending operations of every socket whose deadline passed. No timer per operation, no timer
// handler that can outlive its socket (a Deadline unregisters itself when destroyed).
//
// Precision is kTick. Code must check expired() before starting an operation (the sweeper can only
// cancel operations that are pending), which the I/O helpers in conn_io.hpp do.
#include "gateway/http.hpp"

namespace gw {

class Deadlines;

// Something the sweeper calls on every tick while it exists (a ClientWatch that arms itself only
// for requests that last longer than a tick). Registered for its whole lifetime.
class Ticker {
 public:
  explicit Ticker(Deadlines& owner) noexcept;
  virtual ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  virtual void on_tick(Clock::time_point now) = 0;

 private:
  friend class Deadlines;
  Deadlines& owner_;
  Ticker* prev_ = nullptr;
  Ticker* next_ = nullptr;
};

class Deadline {
 public:
  Deadline(Deadlines& owner, tcp::socket& socket) noexcept;
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void expires_after(Clock::duration d) noexcept { expires_at(Clock::now() + d); }
  void expires_at(Clock::time_point t) noexcept {
    at_ = t;
    fired_ = false;
  }
  void expires_never() noexcept { expires_at(Clock::time_point::max()); }
  Clock::time_point expiry() const noexcept { return at_; }

  // The deadline has passed (the next operation must not start).
  bool expired() const noexcept { return Clock::now() >= at_; }
  // The sweeper cancelled this socket's operations because the deadline passed.
  bool fired() const noexcept { return fired_; }

 private:
  friend class Deadlines;
  Deadlines& owner_;
  tcp::socket& socket_;
  Clock::time_point at_ = Clock::time_point::max();
  bool fired_ = false;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
};

class Deadlines {
 public:
  static constexpr auto kTick = std::chrono::milliseconds(25);

  explicit Deadlines(net::any_io_executor ex) : timer_(std::move(ex)) {}
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  std::size_t size() const noexcept { return count_; }

 private:
  friend class Deadline;
  friend class Ticker;
  void add(Deadline* d) noexcept;
  void remove(Deadline* d) noexcept;
  void add(Ticker* t) noexcept;
  void remove(Ticker* t) noexcept;
  void arm();
  void sweep();

  net::steady_timer timer_;
  Deadline* head_ = nullptr;
  std::size_t count_ = 0;
  Ticker* tickers_ = nullptr;
  Ticker* next_ticker_ = nullptr;  // during sweep(): the next one to call (a call may remove it)
  bool ticking_ = false;
};

}  // namespace gw
