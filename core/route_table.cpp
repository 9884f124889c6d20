#include "core/route_table.hpp"

#include <boost/url/pct_string_view.hpp>

namespace core::detail {
namespace {

bool is_capture(std::string_view s) {
  return s.size() > 2 && s.front() == '{' && s.back() == '}';
}
bool is_rest(std::string_view s) {
  return is_capture(s) && s[s.size() - 2] == '*';
}

std::string capture_name(std::string_view s) {
  s = s.substr(1, s.size() - 2);
  if (!s.empty() && s.back() == '*') s.remove_suffix(1);
  return std::string(s);
}

// Percent-decodes; returns false for malformed escapes.
bool decode(std::string_view in, std::string& out) {
  auto pct = boost::urls::make_pct_string_view(in);
  if (!pct) return false;
  out = pct->decode();
  return true;
}

}  // namespace

Pattern compile(std::string_view pattern) {
  Pattern p;
  std::size_t pos = 1;  // patterns start with '/'
  while (pos <= pattern.size()) {
    auto next = pattern.find('/', pos);
    if (next == std::string_view::npos) next = pattern.size();
    p.segments.emplace_back(pattern.substr(pos, next - pos));
    pos = next + 1;
  }
  p.literal_prefix = "/";
  for (std::size_t i = 0; i < p.segments.size(); ++i) {
    if (is_capture(p.segments[i])) {
      p.all_literal = false;
      break;
    }
    p.literal_prefix += p.segments[i];
    if (i + 1 < p.segments.size()) p.literal_prefix += '/';
  }
  return p;
}

bool match(const Pattern& p, std::string_view path, PathParams& params) {
  if (p.all_literal) return path == p.literal_prefix;
  if (path.substr(0, p.literal_prefix.size()) != p.literal_prefix) return false;
  std::size_t pos = 1;
  for (std::size_t i = 0; i < p.segments.size(); ++i) {
    const std::string& seg = p.segments[i];
    if (pos > path.size()) return false;
    if (is_rest(seg)) {
      std::string value;
      if (pos == path.size() || !decode(path.substr(pos), value)) return false;
      params.items.emplace_back(capture_name(seg), std::move(value));
      return true;
    }
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    const std::string_view part = path.substr(pos, next - pos);
    if (is_capture(seg)) {
      std::string value;
      if (part.empty() || !decode(part, value)) return false;
      params.items.emplace_back(capture_name(seg), std::move(value));
    } else if (part != seg) {
      return false;
    }
    pos = next + 1;
  }
  return pos == path.size() + 1;  // consumed exactly; "/a/" does not match "/a"
}

}  // namespace core::detail
