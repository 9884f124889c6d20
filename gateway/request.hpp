#pragma once
// One client request: its head (a private copy of the bytes, parsed in place) and its body. Reused
// for every request of a connection, so a warm keep-alive connection allocates nothing per head.
#include "core/http1.hpp"

#include <string>
#include <string_view>

namespace gw {

class Request {
 public:
  Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // Copies `raw` (exactly one head, as scan_head found it) and parses the copy.
  core::http1::HeadError parse(std::string_view raw, const core::http1::Limits& limits) {
    raw_.assign(raw);
    body_.clear();
    return core::http1::parse_request_head(raw_, limits, head_);
  }

  const core::http1::RequestHead& head() const noexcept { return head_; }
  std::string_view method() const noexcept { return head_.method; }
  std::string_view target() const noexcept { return head_.target; }
  std::string_view path() const noexcept { return head_.path(); }
  std::string_view query() const noexcept { return head_.query(); }
  std::string_view header(std::string_view name) const noexcept { return head_.get(name); }
  int version_minor() const noexcept { return head_.version_minor; }
  bool is_head() const noexcept { return head_.method == "HEAD"; }

  std::string& body() noexcept { return body_; }
  const std::string& body() const noexcept { return body_; }
  // Drops a large body's storage once the request is done (bodies can be megabytes).
  void release_body() {
    if (body_.capacity() > 64 * 1024) std::string().swap(body_);
  }

 private:
  std::string raw_;
  core::http1::RequestHead head_;
  std::string body_;
};

}  // namespace gw
