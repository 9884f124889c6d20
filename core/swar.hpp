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

// w with its bytes 'A'..'Z' made lowercase and every other byte unchanged (bytes >= 0x80
// included: their low 7 bits are not looked at alone). Exact per byte: the additions never carry
// out of a byte, since each adds to a value below 0x80.
constexpr std::uint64_t ascii_lower(std::uint64_t w) noexcept {
  constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  const std::uint64_t low = w & kLow7;
  const std::uint64_t at_least_a = low + kOnes * (0x80 - 'A');      // high bit: low >= 'A'
  const std::uint64_t above_z = low + kOnes * (0x80 - 'Z' - 1);     // high bit: low > 'Z'
  const std::uint64_t upper = at_least_a & ~above_z & ~w & kHighs;  // ~w: the byte is < 0x80
  return w | (upper >> 2);                                          // 0x80 >> 2 == 0x20
}

}  // namespace core::swar
