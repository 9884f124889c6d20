#pragma once
// A bounded in-process cache: at most `max_entries` entries, each valid for `ttl`. Least recently
// used entries go first when full, and expired ones are dropped as they are met, so a flood of
// distinct keys can never grow it past its bound or keep dead entries alive. Single-threaded (one
// per worker); lookups take a string_view, so the hot path does not build a std::string to ask.
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace core {

template <class V>
class BoundedCache {
 public:
  using Clock = std::chrono::steady_clock;

  BoundedCache(std::size_t max_entries, Clock::duration ttl) : max_(max_entries ? max_entries : 1), ttl_(ttl) {}
  BoundedCache(const BoundedCache&) = delete;
  BoundedCache& operator=(const BoundedCache&) = delete;

  // The live value, or nullptr. A hit becomes the most recently used.
  const V* find(std::string_view key, Clock::time_point now = Clock::now()) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    auto node = it->second;
    if (now >= node->expires) {
      index_.erase(it);
      lru_.erase(node);
      return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, node);
    return &node->value;
  }

  void put(std::string key, V value, Clock::time_point now = Clock::now()) {
    drop_expired_tail(now);
    if (auto it = index_.find(std::string_view(key)); it != index_.end()) {
      auto node = it->second;
      node->value = std::move(value);
      node->expires = now + ttl_;
      lru_.splice(lru_.begin(), lru_, node);
      return;
    }
    if (lru_.size() >= max_) {
      index_.erase(std::string_view(lru_.back().key));
      lru_.pop_back();
    }
    lru_.push_front(Node{std::move(key), std::move(value), now + ttl_});
    index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  }

  void erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    lru_.erase(it->second);
    index_.erase(it);
  }

  void clear() {
    index_.clear();
    lru_.clear();
  }

  std::size_t size() const noexcept { return lru_.size(); }
  std::size_t max_entries() const noexcept { return max_; }

 private:
  struct Node {
    std::string key;
    V value;
    Clock::time_point expires;
  };
  using List = std::list<Node>;

  // Expired entries at the cold end go on every put, without a scan; the others when looked up or
  // evicted. The bound is max_ either way; this only keeps dead entries from occupying it.
  void drop_expired_tail(Clock::time_point now) {
    while (!lru_.empty() && now >= lru_.back().expires) {
      index_.erase(std::string_view(lru_.back().key));
      lru_.pop_back();
    }
  }

  std::size_t max_;
  Clock::duration ttl_;
  List lru_;  // front: most recently used
  std::unordered_map<std::string_view, typename List::iterator> index_;  // keys view into lru_ nodes
};

}  // namespace core
