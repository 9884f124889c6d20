#pragma once
// The connections a worker serves, so that a shutdown can close idle keep-alive connections at once,
// wait for busy ones, and after the grace period cut everything they are waiting on.
#include "gateway/http.hpp"

namespace gw {

struct SessionEntry {
  tcp::socket* client = nullptr;
  bool idle = true;                      // between requests (safe to close at shutdown)
  tcp::socket* upstream = nullptr;       // while connecting to or relaying from a provider
  net::steady_timer* waiting = nullptr;  // a wait with no socket of its own (DNS)
  bool client_gone = false;              // the client closed while we were working for it

  // Makes whatever the session waits on for its provider fail now (client gone, forced shutdown).
  void cancel_upstream() noexcept {
    error_code ignored;
    if (upstream) upstream->close(ignored);
    if (waiting) waiting->cancel();
  }

  SessionEntry* prev = nullptr;
  SessionEntry* next = nullptr;
};

class SessionList {
 public:
  void add(SessionEntry& e) noexcept {
    e.next = head_;
    if (head_) head_->prev = &e;
    head_ = &e;
    ++count_;
  }
  void remove(SessionEntry& e) noexcept {
    if (e.prev)
      e.prev->next = e.next;
    else
      head_ = e.next;
    if (e.next) e.next->prev = e.prev;
    --count_;
  }
  template <class F>
  void for_each(F&& f) {
    for (SessionEntry* e = head_; e;) {
      SessionEntry* next = e->next;  // f may not remove, but be safe
      f(*e);
      e = next;
    }
  }
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

 private:
  SessionEntry* head_ = nullptr;
  std::size_t count_ = 0;
};

// Registers for its lifetime.
class SessionRegistration {
 public:
  SessionRegistration(SessionList& list, SessionEntry& e) noexcept : list_(list), entry_(e) { list_.add(e); }
  ~SessionRegistration() { list_.remove(entry_); }
  SessionRegistration(const SessionRegistration&) = delete;
  SessionRegistration& operator=(const SessionRegistration&) = delete;

 private:
  SessionList& list_;
  SessionEntry& entry_;
};

}  // namespace gw
