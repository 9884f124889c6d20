#include "core/json_scan.hpp"

#include <cstring>

namespace core {
namespace {

bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Position just after the JSON string starting at s[i] == '"'.
std::size_t skip_string(std::string_view s, std::size_t i) noexcept {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
  }
  return s.size();
}

// Position just after the value starting at s[i].
std::size_t skip_value(std::string_view s, std::size_t i) noexcept {
  if (i >= s.size()) return s.size();
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return i;
}

int hex(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Does the string literal (quotes included) decode to `want` (ASCII)?
bool key_equals(std::string_view lit, std::string_view want) noexcept {
  std::size_t w = 0;
  for (std::size_t i = 1; i + 1 < lit.size(); ++i) {
    char c = lit[i];
    if (c == '\\') {
      if (++i + 1 >= lit.size()) return false;
      if (lit[i] == 'u') {
        if (i + 4 >= lit.size()) return false;
        int v = 0;
        for (int k = 1; k <= 4; ++k) {
          const int d = hex(lit[i + k]);
          if (d < 0) return false;
          v = v * 16 + d;
        }
        if (v >= 0x80) return false;
        c = static_cast<char>(v);
        i += 4;
      } else if (lit[i] == '"' || lit[i] == '\\' || lit[i] == '/') {
        c = lit[i];
      } else {
        return false;
      }
    }
    if (w >= want.size() || want[w++] != c) return false;
  }
  return w == want.size();
}

}  // namespace

void TopLevelMember::start_value(char c) noexcept {
  want_ = Value::capturing;
  value_depth_ = depth_;
  scalar_ = c != '{' && c != '[' && c != '"';
  value_.clear();
}

void TopLevelMember::feed(std::string_view bytes) noexcept {
  if (done_ || gave_up_) return;
  constexpr std::size_t none = std::string_view::npos;
  // The value is copied in spans, not byte by byte: `from` is where this piece's part of it
  // begins (none: not capturing). Every exit appends what was scanned, within the bound.
  std::size_t from = want_ == Value::capturing ? 0 : none;
  const auto take = [&](std::size_t end) noexcept {
    if (from == none) return true;
    if (value_.size() + (end - from) > max_) {
      gave_up_ = true;
      return false;
    }
    value_.append(bytes.data() + from, end - from);
    from = none;
    return true;
  };
  const auto finish = [&](std::size_t end) noexcept {
    if (take(end)) done_ = true;
  };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    // Inside a string we neither match nor look at structure, only its end matters: jump to the
    // next quote or backslash (memchr), as most of a completion's bytes are its content.
    if (in_string_ && !in_key_ && !escape_) {
      const char* at = bytes.data() + i;
      const std::size_t left = bytes.size() - i;
      const auto* quote = static_cast<const char*>(std::memchr(at, '"', left));
      const std::size_t span = quote ? static_cast<std::size_t>(quote - at) : left;
      const auto* backslash = static_cast<const char*>(std::memchr(at, '\\', span));
      i += backslash ? static_cast<std::size_t>(backslash - at) : span;
      if (i == bytes.size()) break;
    }
    const char c = bytes[i];
    if (want_ == Value::await_value && !is_ws(c)) {
      start_value(c);
      from = i;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
        key_ok_ = key_ok_ && !in_key_;  // an escaped key is not one we look for
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
        if (in_key_) {
          in_key_ = false;
          want_ = key_ok_ && key_len_ == key_.size() ? Value::await_colon : Value::none;
        } else if (want_ == Value::capturing && depth_ == value_depth_) {
          return finish(i + 1);  // a string value ended
        }
      } else if (in_key_) {
        key_ok_ = key_ok_ && key_len_ < key_.size() && key_[key_len_] == c;
        ++key_len_;
      }
      continue;
    }
    if (want_ == Value::capturing && scalar_ && depth_ == value_depth_ &&
        (c == ',' || c == '}' || c == ']' || is_ws(c)))
      return finish(i);  // a number or literal ended, before this byte
    switch (c) {
      case '"':
        in_string_ = true;
        if (depth_ == 1 && expect_key_) {
          in_key_ = true;
          key_ok_ = true;
          key_len_ = 0;
          expect_key_ = false;
        }
        break;
      case '{':
      case '[':
        ++depth_;
        expect_key_ = c == '{' && depth_ == 1;
        break;
      case '}':
      case ']':
        --depth_;
        if (want_ == Value::capturing && depth_ == value_depth_) return finish(i + 1);
        break;
      case ',':
        if (depth_ == 1) expect_key_ = true;
        break;
      case ':':
        if (want_ == Value::await_colon) want_ = Value::await_value;
        break;
      default:
        break;
    }
  }
  take(bytes.size());  // the value goes on in the next piece
}

void locate_members(std::string_view s, std::span<const std::string_view> keys,
                    std::span<Range> out) noexcept {
  std::size_t missing = keys.size();
  int depth = 0;
  bool expect_key = false;
  for (std::size_t i = 0; i < s.size() && missing > 0;) {
    const char c = s[i];
    if (c == '"') {
      const std::size_t close = skip_string(s, i);
      if (depth == 1 && expect_key) {
        const auto name = s.substr(i, close - i);
        std::size_t j = close;
        while (j < s.size() && (is_ws(s[j]) || s[j] == ':')) ++j;
        const std::size_t end = skip_value(s, j);
        for (std::size_t k = 0; k < keys.size(); ++k) {
          if (out[k].found() || !key_equals(name, keys[k])) continue;
          out[k] = Range{j, end};
          --missing;
        }
        expect_key = false;
        i = end;
        continue;
      }
      i = close;
      continue;
    }
    if (c == '{') {
      ++depth;
      expect_key = depth == 1;
    } else if (c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
    ++i;
  }
}

Range locate_member(std::string_view s, std::string_view key) noexcept {
  Range r;
  locate_members(s, {&key, 1}, {&r, 1});
  return r;
}

}  // namespace core
