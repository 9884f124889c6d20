#include "gateway/body_budget.hpp"

namespace gw {

bool BodyBudget::try_take(std::size_t n) noexcept {
  std::size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (n > total_ - used) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

}  // namespace gw
