#pragma once
// A process-wide bound on request body bytes held in memory, so many slow uploads cannot exhaust
// it: each request leases what it buffers (what it declared, for a Content-Length) and gives it
// back when done. One atomic, shared by every worker.
#include <atomic>
#include <cstddef>

namespace gw {

class BodyBudget {
 public:
  explicit BodyBudget(std::size_t total) noexcept : total_(total) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  bool try_take(std::size_t n) noexcept;
  void give_back(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }
  std::size_t in_use() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::size_t total() const noexcept { return total_; }

  // What one request holds; returned on destruction.
  class Lease {
   public:
    explicit Lease(BodyBudget& b) noexcept : budget_(b) {}
    ~Lease() { release(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // Holds at least `n` bytes in total; false when the budget cannot cover the difference.
    bool hold(std::size_t n) noexcept {
      if (n <= held_) return true;
      if (!budget_.try_take(n - held_)) return false;
      held_ = n;
      return true;
    }
    void release() noexcept {
      if (held_) budget_.give_back(held_);
      held_ = 0;
    }

   private:
    BodyBudget& budget_;
    std::size_t held_ = 0;
  };

 private:
  const std::size_t total_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace gw
