#pragma once
// Rendering HTTP/1.1 heads into a caller-owned string (reused across requests, so no allocation once
// warm). Callers pass only validated names and values: parsed from a checked head, constants, or
// admin input checked with is_token / is_field_value when it was stored.
#include "core/http1.hpp"

#include <string>
#include <string_view>

namespace core::http1 {

class HeadWriter {
 public:
  explicit HeadWriter(std::string& out) : out_(out) {}

  // "HTTP/1.<minor> <status> <reason>\r\n"; the reason may be empty (the space stays).
  HeadWriter& status_line(int version_minor, unsigned status, std::string_view reason);
  // "<method> <target> HTTP/1.1\r\n"
  HeadWriter& request_line(std::string_view method, std::string_view target);
  HeadWriter& field(std::string_view name, std::string_view value);
  HeadWriter& field(std::string_view name, std::uint64_t value);
  // "name: <prefix><value>" without building the value first (credentials: "Bearer " + key).
  HeadWriter& field_prefixed(std::string_view name, std::string_view prefix, std::string_view value);
  // The blank line that ends the head.
  void end();

 private:
  std::string& out_;
};

// What a head says about its body, for a message we send.
void write_framing(HeadWriter& w, Framing framing, std::uint64_t content_length);

}  // namespace core::http1
