#pragma once
// Incremental look into a JSON object streamed in pieces, without holding it: the value of one
// top-level member (e.g. "usage" at the end of a 10 MB completion) is copied, bounded, as it
// passes. Assumes the body is the JSON an API sent; anything else simply yields nothing.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace core {

class TopLevelMember {
 public:
  explicit TopLevelMember(std::string_view key, std::size_t max_value = 16 * 1024)
      : key_(key), max_(max_value) {}

  void feed(std::string_view bytes) noexcept;
  // The value's bytes once complete (the first occurrence), else empty.
  std::string_view value() const noexcept { return done_ ? std::string_view(value_) : std::string_view{}; }
  bool found() const noexcept { return done_; }

 private:
  void start_value(char c) noexcept;

  std::string key_;
  std::size_t max_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool expect_key_ = false;  // at depth 1, the next string is a key
  bool in_key_ = false;
  bool key_ok_ = false;      // the key read so far matches
  std::size_t key_len_ = 0;
  enum class Value : unsigned char { none, await_colon, await_value, capturing } want_ = Value::none;
  int value_depth_ = 0;      // depth at which the captured value started
  bool scalar_ = false;      // the value is a number / literal (ends at , } or whitespace)
  std::string value_;
  bool done_ = false;
  bool gave_up_ = false;
};

// Byte ranges of a top-level member's value in a whole JSON object text (key compared after
// decoding escapes). {npos, npos} when absent. Assumes valid JSON.
struct Range {
  std::size_t begin = std::string_view::npos, end = std::string_view::npos;
  bool found() const noexcept { return begin != std::string_view::npos; }
};
Range locate_member(std::string_view object_text, std::string_view key) noexcept;
// Several members in one pass: out[i] is keys[i]'s range (its first occurrence), as locate_member
// gives it. `out` starts as not found and has keys.size() entries.
void locate_members(std::string_view object_text, std::span<const std::string_view> keys,
                    std::span<Range> out) noexcept;

// A byte edit of a body: [begin, end) is replaced by text (begin == end: an insertion).
struct Splice {
  std::size_t begin = 0, end = 0;
  std::string text;
};

}  // namespace core
