#include "core/timestamp.hpp"

#include <charconv>

namespace core {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t at, std::size_t n, unsigned& out) noexcept {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<std::int64_t> parse_timestamp_us(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  if (s.find('-') == std::string_view::npos || s.front() == '-') {  // Unix seconds
    std::int64_t secs = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), secs);
    if (ec != std::errc{} || p != s.data() + s.size() || secs < 0 || secs > 253402300799) return std::nullopt;
    return secs * 1000000;
  }
  unsigned y = 0, mo = 0, d = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || mo < 1 || mo > 12 || d < 1 || d > 31)
    return std::nullopt;
  std::int64_t us = days_from_civil(y, mo, d) * 86400LL * 1000000;
  if (s.size() == 10) return us;
  unsigned h = 0, mi = 0, sec = 0;
  if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) || s.size() < 19 || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec) || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  us += ((h * 60LL + mi) * 60 + sec) * 1000000;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    std::int64_t frac = 0, scale = 1000000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i)
      if (scale > 1) frac += (s[i] - '0') * (scale /= 10);
    us += frac;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size() ? std::optional(us) : std::nullopt;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    unsigned oh = 0, om = 0;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(s, i + 4, 2, om) ||
        i + 6 != s.size() || oh > 23 || om > 59)
      return std::nullopt;
    const std::int64_t offset = (oh * 60LL + om) * 60 * 1000000;
    return s[i] == '+' ? us - offset : us + offset;
  }
  return i == s.size() ? std::optional(us) : std::nullopt;  // no zone: UTC
}

}  // namespace core
