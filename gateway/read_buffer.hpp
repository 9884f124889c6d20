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
};

}  // namespace gw
