#include "core/sse.hpp"

namespace core {

std::size_t sse_event_end(std::string_view s) noexcept {
  // An event ends with an empty line: "\n\n", "\n\r\n" (after a CRLF or LF line).
  for (std::size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

SseEvent SseSplitter::parse(std::string_view bytes) {
  SseEvent e;
  e.bytes = bytes;
  bool have_data = false;
  std::string_view rest = bytes;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto value = [&](std::size_t prefix) {
      std::string_view v = line.substr(prefix);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return v;
    };
    if (line.rfind("data:", 0) == 0 && !have_data) {
      e.data = value(5);
      have_data = true;
    } else if (line.rfind("event:", 0) == 0) {
      e.event = value(6);
    }
  }
  return e;
}

}  // namespace core
