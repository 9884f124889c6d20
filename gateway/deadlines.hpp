#pragma once
// Deadlines for socket operations, one sweeper per worker (the nginx / Envoy approach): arming a
// deadline files a time point, nothing more; a single timer ticks every kTick and cancels the
// pending operations of every socket whose deadline passed. No timer per operation, no timer
// handler that can outlive its socket (a Deadline unregisters itself when destroyed).
//
// Deadlines sit in a hashed timing wheel (kSlots slots of one tick each, one revolution = kSlots x
// kTick): a tick looks only at the slot of the tick that just passed, not at every connection, so
// 10,000 streams cost a tick what 40 do. A deadline more than one revolution away stays in its
// slot, looked at once per revolution, until it is due.
//
// A deadline fires 0 to 2 ticks (50 ms) after its time. Code must check expired() before starting
// an operation (the sweeper can only cancel operations that are pending).
#include "gateway/http.hpp"

#include <array>
#include <cstdint>

namespace gw {

class Deadlines;

// Something the sweeper calls on every tick until it unregisters (a ClientWatch that arms itself
// only for requests that outlast a tick, then leaves the list).
class Ticker {
 public:
  explicit Ticker(Deadlines& owner) noexcept;
  virtual ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  virtual void on_tick(Clock::time_point now) = 0;

 protected:
  void stop_ticking() noexcept;  // no more on_tick calls (idempotent)

 private:
  friend class Deadlines;
  Deadlines& owner_;
  bool linked_ = false;
  Ticker* prev_ = nullptr;
  Ticker* next_ = nullptr;
};

class Deadline {
 public:
  Deadline(Deadlines& owner, tcp::socket& socket) noexcept : owner_(owner), socket_(socket) {}
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void expires_after(Clock::duration d) noexcept { expires_at(Clock::now() + d); }
  void expires_at(Clock::time_point t) noexcept;
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
  std::uint32_t slot_ = kUnfiled;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
  static constexpr std::uint32_t kUnfiled = ~std::uint32_t{0};
};

class Deadlines {
 public:
  friend class Deadline;
  static constexpr auto kTick = std::chrono::milliseconds(25);
  static constexpr std::size_t kSlots = 256;  // one revolution: 6.4 s

  explicit Deadlines(net::any_io_executor ex) : timer_(std::move(ex)) {}
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  std::size_t size() const noexcept { return count_; }  // deadlines filed (not never, not fired)

 private:
  friend class Ticker;
  static std::int64_t tick_of(Clock::time_point t) noexcept { return t.time_since_epoch() / kTick; }
  void file(Deadline* d) noexcept;
  void unfile(Deadline* d) noexcept;
  void add(Ticker* t) noexcept;
  void remove(Ticker* t) noexcept;
  void catch_up() noexcept;
  void start_ticking();
  void sweep();

  net::steady_timer timer_;
  std::array<Deadline*, kSlots> slots_{};
  std::size_t count_ = 0;
  std::int64_t swept_tick_ = tick_of(Clock::now());  // every slot up to this tick was looked at
  Ticker* tickers_ = nullptr;
  Ticker* next_ticker_ = nullptr;  // during sweep(): the next one to call (a call may remove it)
  bool ticking_ = false;
};

}  // namespace gw
