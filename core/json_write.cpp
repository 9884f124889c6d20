#include "core/json_write.hpp"

#include "core/swar.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace core::json_write {

namespace {

// Whether any of the 8 bytes of w needs an escape: a control character (< 0x20), '"' or '\\'.
bool word_needs_escape(std::uint64_t w) noexcept {
  return swar::has_byte_below(w, 0x20) | swar::has_byte(w, '"') | swar::has_byte(w, '\\');  // no branches
}

// The first position at or after `from` whose byte needs an escape, or s.size(): eight bytes at a
// time while none does (most text), a word test instead of 8 branches.
std::size_t next_escape(std::string_view s, std::size_t from) noexcept {
  std::size_t i = from;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (word_needs_escape(w)) break;
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return s.size();
}

// Builds a member in a stack buffer, appended once.
class MemberBuffer {
 public:
  static constexpr std::size_t kSize = 256;
  // Room for lead, "key": and `value_max` more bytes?
  static bool fits(std::string_view key, std::size_t value_max) noexcept {
    return key.size() + value_max + 4 <= kSize;
  }
  MemberBuffer(char lead, std::string_view key) noexcept {
    if (lead != '\0') buf_[n_++] = lead;
    buf_[n_++] = '"';
    put(key);
    buf_[n_++] = '"';
    buf_[n_++] = ':';
  }
  void put(char c) noexcept { buf_[n_++] = c; }
  void put(std::string_view s) noexcept {
    std::memcpy(buf_ + n_, s.data(), s.size());
    n_ += s.size();
  }
  char* cursor() noexcept { return buf_ + n_; }
  char* limit() noexcept { return buf_ + kSize; }
  void advance_to(char* p) noexcept { n_ = static_cast<std::size_t>(p - buf_); }
  void append_to(std::string& out) const { out.append(buf_, n_); }

 private:
  char buf_[kSize];
  std::size_t n_ = 0;
};

}  // namespace

void append_member(std::string& out, char lead, std::string_view key, std::string_view value) {
  if (!MemberBuffer::fits(key, value.size() + 2) || next_escape(value, 0) != value.size()) {
    append_key(out, lead, key);
    append_string(out, value);
    return;
  }
  MemberBuffer m(lead, key);
  m.put('"');
  m.put(value);
  m.put('"');
  m.append_to(out);
}

void append_member(std::string& out, char lead, std::string_view key, std::int64_t value) {
  constexpr std::size_t kMaxDigits = 20;  // "-9223372036854775808"
  if (!MemberBuffer::fits(key, kMaxDigits)) {
    append_key(out, lead, key);
    append_int(out, value);
    return;
  }
  MemberBuffer m(lead, key);
  m.advance_to(std::to_chars(m.cursor(), m.limit(), value).ptr);
  m.append_to(out);
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // bytes copied as they are, appended in one go
  for (std::size_t i = next_escape(s, 0); i < s.size(); i = next_escape(s, i + 1)) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\b':
        out.push_back('b');
        break;
      case '\f':
        out.push_back('f');
        break;
      case '\n':
        out.push_back('n');
        break;
      case '\r':
        out.push_back('r');
        break;
      case '\t':
        out.push_back('t');
        break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void append_key(std::string& out, char lead, std::string_view key) {
  char buf[80];
  if (key.size() > sizeof buf - 4) {
    if (lead != '\0') out.push_back(lead);
    out.append("\"").append(key).append("\":");
    return;
  }
  std::size_t n = 0;
  if (lead != '\0') buf[n++] = lead;
  buf[n++] = '"';
  std::memcpy(buf + n, key.data(), key.size());
  n += key.size();
  buf[n++] = '"';
  buf[n++] = ':';
  out.append(buf, n);
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_fixed3(std::string& out, std::int64_t thousandths) {
  // Unsigned magnitude: -INT64_MIN does not fit an int64.
  const bool negative = thousandths < 0;
  const std::uint64_t m =
      negative ? 0 - static_cast<std::uint64_t>(thousandths) : static_cast<std::uint64_t>(thousandths);
  char buf[32];
  char* p = buf;
  if (negative) *p++ = '-';
  p = std::to_chars(p, buf + sizeof buf, m / 1000).ptr;
  const auto frac = static_cast<unsigned>(m % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  out.append(buf, p);
}

void append_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round trip, never "inf"/"nan"
  out.append(buf, r.ptr);
}

}  // namespace core::json_write
