#pragma once
// Word-at-a-time byte tests ("SWAR"): 8 bytes of text loaded into a std::uint64_t (memcpy), asked
// whether any of them is below a value or equal to one, in a few instructions instead of 8 branches.
// The "has a zero byte" trick: a flagged lane may be wrong only above a true one (borrows), so
// the yes/no answer is exact; bytes >= 0x80 never count as below (masked by ~w).
#include <cstdint>

namespace core::swar {

inline constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

// Whether a byte of w is below n (n <= 0x80).
constexpr bool has_byte_below(std::uint64_t w, unsigned char n) noexcept {
  return ((w - kOnes * n) & ~w & kHighs) != 0;
}

// Whether a byte of w equals c.
constexpr bool has_byte(std::uint64_t w, unsigned char c) noexcept {
  const std::uint64_t x = w ^ (kOnes * c);
  return ((x - kOnes) & ~x & kHighs) != 0;
}

}  // namespace core::swar
