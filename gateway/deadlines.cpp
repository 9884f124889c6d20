#include "gateway/deadlines.hpp"

namespace gw {

// ---- Deadline ---------------------------------------------------------------------------------

Deadline::~Deadline() {
  owner_.unfile(this);
}

void Deadline::expires_at(Clock::time_point t) noexcept {
  fired_ = false;
  // Re-armed within the same tick (the common case: one read after another): the slot stays.
  const bool same_tick = slot_ != kUnfiled && t != Clock::time_point::max() &&
                         Deadlines::tick_of(t) == Deadlines::tick_of(at_);
  at_ = t;
  if (same_tick) return;
  owner_.unfile(this);
  if (t != Clock::time_point::max()) owner_.file(this);
}

// ---- Ticker -----------------------------------------------------------------------------------

Ticker::Ticker(Deadlines& owner) noexcept : owner_(owner) {
  owner_.add(this);
}

Ticker::~Ticker() {
  stop_ticking();
}

void Ticker::stop_ticking() noexcept {
  if (linked_) owner_.remove(this);
}

// ---- Deadlines --------------------------------------------------------------------------------

// The sweeper was off: ticks that passed meanwhile count as swept (nothing was filed in them).
void Deadlines::catch_up() noexcept {
  if (!ticking_) swept_tick_ = std::max(swept_tick_, tick_of(Clock::now()) - 1);
}

void Deadlines::file(Deadline* d) noexcept {
  catch_up();
  // A deadline in a tick already swept goes to the next one to sweep (it is due: the sweep fires it).
  const std::int64_t tick = std::max(tick_of(d->at_), swept_tick_ + 1);
  d->slot_ = static_cast<std::uint32_t>(static_cast<std::uint64_t>(tick) % kSlots);
  Deadline*& head = slots_[d->slot_];
  d->prev_ = nullptr;
  d->next_ = head;
  if (head) head->prev_ = d;
  head = d;
  ++count_;
  if (!ticking_) start_ticking();
}

void Deadlines::unfile(Deadline* d) noexcept {
  if (d->slot_ == Deadline::kUnfiled) return;
  if (d->prev_)
    d->prev_->next_ = d->next_;
  else
    slots_[d->slot_] = d->next_;
  if (d->next_) d->next_->prev_ = d->prev_;
  d->prev_ = d->next_ = nullptr;
  d->slot_ = Deadline::kUnfiled;
  --count_;
}

void Deadlines::add(Ticker* t) noexcept {
  t->prev_ = nullptr;
  t->next_ = tickers_;
  if (tickers_) tickers_->prev_ = t;
  tickers_ = t;
  t->linked_ = true;
  catch_up();
  if (!ticking_) start_ticking();
}

void Deadlines::remove(Ticker* t) noexcept {
  if (next_ticker_ == t) next_ticker_ = t->next_;
  if (t->prev_)
    t->prev_->next_ = t->next_;
  else
    tickers_ = t->next_;
  if (t->next_) t->next_->prev_ = t->prev_;
  t->prev_ = t->next_ = nullptr;
  t->linked_ = false;
}

// The timer runs only while some deadline is filed or some ticker waits, so an idle worker (and a
// draining one, once its sessions are gone) has no pending work.
void Deadlines::start_ticking() {
  ticking_ = true;
  timer_.expires_after(kTick);
  timer_.async_wait([this](error_code ec) {
    ticking_ = false;
    if (ec) return;
    sweep();
    if (count_ > 0 || tickers_) start_ticking();
  });
}

void Deadlines::sweep() {
  const auto now = Clock::now();
  // The slots of every tick that has wholly passed since the last sweep (at most one revolution:
  // that looks at every slot once). A deadline fires 0 to 2 ticks after its time.
  const std::int64_t last = tick_of(now) - 1;
  const std::int64_t from = std::max(swept_tick_ + 1, last - static_cast<std::int64_t>(kSlots) + 1);
  for (std::int64_t tick = from; tick <= last; ++tick) {
    const auto slot = static_cast<std::size_t>(static_cast<std::uint64_t>(tick) % kSlots);
    for (Deadline* d = slots_[slot]; d;) {
      Deadline* next = d->next_;
      if (now >= d->at_) {
        unfile(d);  // fired: filed again only when re-armed
        d->fired_ = true;
        error_code ignored;
        d->socket_.cancel(ignored);  // completions are posted: nothing runs (or unfiles) in here
      }
      d = next;
    }
  }
  swept_tick_ = std::max(swept_tick_, last);
  for (Ticker* t = tickers_; t; t = next_ticker_) {
    next_ticker_ = t->next_;
    t->on_tick(now);
  }
  next_ticker_ = nullptr;
}

}  // namespace gw
