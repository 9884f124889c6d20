#pragma once
// Relay buffers, recycled: a 64 KiB array inside every relay's coroutine frame made each request
// pay a large malloc/free (and glibc's consolidation). Single-threaded, bounded: at most kMaxIdle
// buffers are kept; more in flight are simply allocated and freed.
#include <array>
#include <memory>
#include <vector>

namespace gw {

class BufferPool {
 public:
  static constexpr std::size_t kSize = 64 * 1024;
  using Buffer = std::array<char, kSize>;

  class Lease {
   public:
    Lease(BufferPool& pool, std::unique_ptr<Buffer> b) : pool_(pool), buf_(std::move(b)) {}
    ~Lease() { pool_.give_back(std::move(buf_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Buffer& operator*() { return *buf_; }

   private:
    BufferPool& pool_;
    std::unique_ptr<Buffer> buf_;
  };

  Lease take() {
    if (idle_.empty()) return {*this, std::make_unique<Buffer>()};
    auto b = std::move(idle_.back());
    idle_.pop_back();
    return {*this, std::move(b)};
  }

 private:
  static constexpr std::size_t kMaxIdle = 64;
  void give_back(std::unique_ptr<Buffer> b) {
    if (b && idle_.size() < kMaxIdle) idle_.push_back(std::move(b));
  }
  std::vector<std::unique_ptr<Buffer>> idle_;
};

}  // namespace gw
