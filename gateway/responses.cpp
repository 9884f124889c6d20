#include "gateway/responses.hpp"

#include "core/http_error.hpp"

namespace gw {

Response json_response(const Request& req, http::status status, std::string body) {
  Response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response error_response(const Request& req, const core::Error& err) {
  const auto h = core::to_http(err.code);
  return json_response(req, static_cast<http::status>(h.status), core::render_openai_error(err));
}

Response empty_response(const Request& req, http::status status) {
  Response res{status, req.version()};
  res.prepare_payload();
  return res;
}

}  // namespace gw
