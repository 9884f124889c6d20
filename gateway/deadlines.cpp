#include "gateway/deadlines.hpp"

namespace gw {

Deadline::Deadline(Deadlines& owner, tcp::socket& socket) noexcept : owner_(owner), socket_(socket) {
  owner_.add(this);
}

Deadline::~Deadline() {
  owner_.remove(this);
}

Ticker::Ticker(Deadlines& owner) noexcept : owner_(owner) {
  owner_.add(this);
}

Ticker::~Ticker() {
  owner_.remove(this);
}

void Deadlines::add(Ticker* t) noexcept {
  t->next_ = tickers_;
  if (tickers_) tickers_->prev_ = t;
  tickers_ = t;
  if (!ticking_) arm();
}

void Deadlines::remove(Ticker* t) noexcept {
  if (next_ticker_ == t) next_ticker_ = t->next_;
  if (t->prev_)
    t->prev_->next_ = t->next_;
  else
    tickers_ = t->next_;
  if (t->next_) t->next_->prev_ = t->prev_;
}

void Deadlines::add(Deadline* d) noexcept {
  d->next_ = head_;
  if (head_) head_->prev_ = d;
  head_ = d;
  ++count_;
  if (!ticking_) arm();
}

void Deadlines::remove(Deadline* d) noexcept {
  if (d->prev_)
    d->prev_->next_ = d->next_;
  else
    head_ = d->next_;
  if (d->next_) d->next_->prev_ = d->prev_;
  --count_;
}

// The timer runs only while some deadline is registered, so an idle worker (and a draining one,
// once its sessions are gone) has no pending work.
void Deadlines::arm() {
  ticking_ = true;
  timer_.expires_after(kTick);
  timer_.async_wait([this](error_code ec) {
    ticking_ = false;
    if (ec) return;
    sweep();
    if (count_ > 0 || tickers_) arm();
  });
}

void Deadlines::sweep() {
  const auto now = Clock::now();
  for (Deadline* d = head_; d; d = d->next_) {
    if (d->fired_ || now < d->at_) continue;
    d->fired_ = true;
    error_code ignored;
    d->socket_.cancel(ignored);
  }
  for (Ticker* t = tickers_; t; t = next_ticker_) {
    next_ticker_ = t->next_;
    t->on_tick(now);
  }
  next_ticker_ = nullptr;
}

}  // namespace gw
