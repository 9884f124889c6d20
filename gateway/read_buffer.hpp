#pragma once
// A connection's input buffer: bytes received but not yet consumed. It starts small and grows only
// up to a hard maximum, so a peer can never make it larger than `max` (the head limit); consumed
// bytes are reclaimed by moving the unread tail to the front before reading more.
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace gw {

class ReadBuffer {
 public:
  ReadBuffer(std::size_t initial, std::size_t max) : initial_(initial), max_(max < initial ? initial : max) {}

  std::string_view data() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ >= end_) begin_ = end_ = 0;
  }

  // Room to read into: at least one byte unless the buffer already holds `max` unread bytes (then
  // an empty span: the caller's limit is reached).
  std::pair<char*, std::size_t> prepare() {
    if (!buf_) allocate(initial_);
    if (end_ == cap_ && begin_ > 0) compact();
    if (end_ == cap_ && cap_ < max_) grow();
    return {buf_.get() + end_, cap_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  std::size_t capacity() const noexcept { return cap_; }
  // The first allocation is `n` bytes instead of the initial size (nothing allocated yet).
  void reserve_first(std::size_t n) {
    if (!buf_) allocate(n < max_ ? n : max_);
  }
  // Sizes the buffer to the traffic: a read that filled all the room there was gets more room
  // next time (up to `limit`), one that used little of it goes back to the initial size once the
  // buffer is empty again. A bulk body is read in large pieces; a trickle (SSE) held for minutes
  // keeps only the small buffer.
  void commit_and_adapt(std::size_t n, std::size_t room, std::size_t limit) {
    end_ += n;
    if (n == room && cap_ < limit && cap_ < max_)
      grow();
    else if (n < room / 4)
      shrink_next_ = true;
  }
  // Before a read into an empty buffer: applies a pending shrink.
  void adapt_before_read() {
    if (shrink_next_ && empty()) shrink();
    shrink_next_ = false;
  }

  // After a request that needed a large buffer, go back to the small one (when nothing is pending).
  void shrink() {
    if (empty() && cap_ > initial_) {
      buf_.reset();
      cap_ = begin_ = end_ = 0;
    }
  }
  // Frees the storage while nothing is buffered (idle connections hold no buffer).
  void release() {
    if (empty()) {
      buf_.reset();
      cap_ = begin_ = end_ = 0;
    }
  }

 private:
  void allocate(std::size_t n) {
    buf_ = std::make_unique_for_overwrite<char[]>(n);
    cap_ = n;
    begin_ = end_ = 0;
  }
  void compact() noexcept {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  void grow() {
    const std::size_t n = cap_ * 2 < max_ ? cap_ * 2 : max_;
    auto bigger = std::make_unique_for_overwrite<char[]>(n);
    std::memcpy(bigger.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    buf_ = std::move(bigger);
    cap_ = n;
  }

  std::size_t initial_, max_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
  bool shrink_next_ = false;
};

}  // namespace gw
