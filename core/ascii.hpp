#pragma once
// ASCII case-insensitive comparisons for HTTP tokens (header names, Expect, media types).
// Folds letters only, so no other byte pair can compare equal.
#include "core/swar.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

namespace core {

inline char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// A hex digit's value (either case), -1 for any other byte.
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  std::size_t i = 0;
  // Eight bytes at a time (every response field is compared against the forwarding rules, and
  // names like x-ratelimit-remaining-requests are long): equal words, or equal once lowered.
  for (; i + 8 <= a.size(); i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y && swar::ascii_lower(x) != swar::ascii_lower(y)) return false;
  }
  for (; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace core
