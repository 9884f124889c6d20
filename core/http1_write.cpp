#include "core/http1_write.hpp"

#include <charconv>

namespace core::http1 {

HeadWriter& HeadWriter::status_line(int version_minor, unsigned status, std::string_view reason) {
  char code[4] = {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                  static_cast<char>('0' + status % 10), ' '};
  out_.append(version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ").append(code, 4).append(reason).append("\r\n");
  return *this;
}

HeadWriter& HeadWriter::request_line(std::string_view method, std::string_view target) {
  out_.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  return *this;
}

HeadWriter& HeadWriter::field(std::string_view name, std::string_view value) {
  out_.append(name).append(": ").append(value).append("\r\n");
  return *this;
}

HeadWriter& HeadWriter::field_prefixed(std::string_view name, std::string_view prefix, std::string_view value) {
  out_.append(name).append(": ").append(prefix).append(value).append("\r\n");
  return *this;
}

HeadWriter& HeadWriter::field(std::string_view name, std::uint64_t value) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, value);
  return field(name, std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

void HeadWriter::end() {
  out_.append("\r\n");
}

void write_framing(HeadWriter& w, Framing framing, std::uint64_t content_length) {
  switch (framing) {
    case Framing::length:
      w.field("Content-Length", content_length);
      break;
    case Framing::none:
      w.field("Content-Length", std::uint64_t{0});
      break;
    case Framing::chunked:
      w.field("Transfer-Encoding", "chunked");
      break;
    case Framing::until_close:
      break;
  }
}

}  // namespace core::http1
