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

}  // namespace

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // bytes copied as they are, appended in one go
  for (std::size_t i = 0; i < s.size(); ++i) {
    // Eight bytes at a time while none needs an escape (most text): a word test, not 8 branches.
    while (i + 8 <= s.size()) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (word_needs_escape(w)) break;
      i += 8;
    }
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
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
