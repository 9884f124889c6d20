#include "gateway/response.hpp"

#include "core/http1_write.hpp"
#include "core/http_error.hpp"

namespace gw {

Response json_response(unsigned status, std::string body) {
  Response res;
  res.status = status;
  res.body = std::move(body);
  return res;
}

Response error_response(Flavor flavor, const core::Error& err) {
  const auto h = core::to_http(err.code);
  Response res = json_response(static_cast<unsigned>(h.status), flavor == Flavor::anthropic
                                                                    ? core::render_anthropic_error(err)
                                                                    : core::render_openai_error(err));
  if (h.retry_after_seconds > 0) res.headers.emplace_back("Retry-After", std::to_string(h.retry_after_seconds));
  return res;
}

Response empty_response(unsigned status) {
  Response res;
  res.status = status;
  res.content_type.clear();
  return res;
}

void render_response_head(const Response& res, int version_minor, bool keep_alive, std::string_view request_id,
                          std::string& out) {
  core::http1::HeadWriter w(out);
  w.status_line(version_minor, res.status, res.reason ? std::string_view(*res.reason) : core::http1::reason_phrase(res.status));
  if (!res.content_type.empty()) {
    w.field("Content-Type", res.content_type);
    w.field("Cache-Control", "no-store");
  }
  for (const auto& [name, value] : res.headers) w.field(name, value);
  if (res.status != 204 && res.status != 304) w.field("Content-Length", std::uint64_t{res.body.size()});
  if (!request_id.empty()) w.field("X-Request-Id", request_id);
  if (!keep_alive)
    w.field("Connection", "close");
  else if (version_minor == 0)
    w.field("Connection", "keep-alive");
  w.end();
}

}  // namespace gw
