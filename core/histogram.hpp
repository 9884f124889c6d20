#pragma once
// Latency histograms with fixed buckets (seconds), Prometheus-style. `Histogram` is for one
// thread; `AtomicHistogram` may be observed from many (a shared pool) and snapshotted anywhere.
#include <array>
#include <atomic>
#include <cstdint>

namespace core {

inline constexpr std::array<double, 16> kLatencyBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                        0.5,   1,      2.5,   5,    10,    30,    60,   300};

struct Histogram {
  std::array<std::uint64_t, kLatencyBuckets.size()> counts{};  // per bucket (not cumulative)
  std::uint64_t count = 0;
  double sum = 0;

  void observe(double seconds) noexcept {
    std::size_t i = 0;
    while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
    if (i < counts.size()) ++counts[i];
    ++count;
    sum += seconds;
  }
  void merge(const Histogram& o) noexcept {
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
    count += o.count;
    sum += o.sum;
  }
};

class AtomicHistogram {
 public:
  void observe(double seconds) noexcept {
    std::size_t i = 0;
    while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
    if (i < counts_.size()) counts_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  }
  Histogram snapshot() const noexcept {
    Histogram h;
    for (std::size_t i = 0; i < counts_.size(); ++i) h.counts[i] = counts_[i].load(std::memory_order_relaxed);
    h.count = count_.load(std::memory_order_relaxed);
    h.sum = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
    return h;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size()> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

}  // namespace core
