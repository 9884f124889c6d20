#include "core/http_error.hpp"

#include <boost/json.hpp>

namespace core {

HttpError to_http(errc e) noexcept {
  const std::string_view code = to_string(e);
  switch (e) {
    case errc::ok:
      return {200, "", code, ""};
    case errc::invalid_json:
      return {400, "invalid_request_error", code, "The request body is not valid JSON."};
    case errc::invalid_request:
      return {400, "invalid_request_error", code, "The request is invalid."};
    case errc::not_found:
      return {404, "invalid_request_error", code, "Not found."};
    case errc::method_not_allowed:
      return {405, "invalid_request_error", code, "Method not allowed for this path."};
    case errc::body_too_large:
      return {413, "invalid_request_error", code, "The request body is too large."};
    case errc::header_too_large:
      return {431, "invalid_request_error", code, "The request headers are too large."};
    case errc::unsupported_media_type:
      return {415, "invalid_request_error", code, "Content-Type must be application/json."};
    case errc::missing_api_key:
      return {401, "invalid_request_error", code,
              "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."};
    case errc::invalid_api_key:
      return {401, "invalid_request_error", code, "Incorrect API key provided."};
    case errc::model_not_found:
      return {404, "invalid_request_error", code, "The model does not exist."};
    case errc::model_not_allowed:
      return {403, "invalid_request_error", code, "This key may not use that model."};
    case errc::conflict:
      return {409, "invalid_request_error", code, "The resource conflicts with an existing one."};
    case errc::request_timeout:
      return {408, "invalid_request_error", code, "The request was not received in time."};
    case errc::not_implemented:
      return {501, "invalid_request_error", code, "The request's transfer coding is not supported."};
    case errc::version_not_supported:
      return {505, "invalid_request_error", code, "Only HTTP/1.0 and HTTP/1.1 are supported."};
    // OpenAI's own 429s: type "requests"/"tokens" with code rate_limit_exceeded, and
    // insufficient_quota for spent credit. Retry-After is the limiter's (gateway/limits).
    case errc::rate_limit_exceeded:
      return {429, "requests", code, "Rate limit reached for this key; retry later."};
    case errc::insufficient_quota:
      return {429, "insufficient_quota", code,
              "You exceeded your current quota: this key's budget is spent. Ask the operator to raise or reset it."};
    case errc::upstream_unavailable:
      return {502, "api_error", code, "The upstream provider could not be reached."};
    case errc::upstream_timeout:
      return {504, "api_error", code, "The upstream provider did not answer in time."};
    case errc::upstream_protocol:
      return {502, "api_error", code, "The upstream provider sent an invalid response."};
    case errc::db_unavailable:
      return {503, "api_error", code, "The service is temporarily unavailable."};
    case errc::cache_unavailable:
      return {503, "api_error", code, "The service is temporarily unavailable."};
    case errc::overloaded:
      return {503, "api_error", code, "The gateway is overloaded; retry later.", 1};
    case errc::shutting_down:
      return {503, "api_error", code, "The gateway is shutting down.", 1};
    case errc::internal:
      return {500, "api_error", code, "Internal error."};
  }
  return {500, "api_error", "internal_error", "Internal error."};
}

std::string render_openai_error(const Error& err) {
  const HttpError h = to_http(err.code);
  boost::json::object inner;
  inner["message"] = err.message.empty() ? h.default_message : std::string_view(err.message);
  inner["type"] = h.type;
  if (err.param.empty())
    inner["param"] = nullptr;
  else
    inner["param"] = err.param;
  inner["code"] = h.code;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  return boost::json::serialize(outer);
}

std::string_view anthropic_error_type(const Error& err) noexcept {
  if (err.code == errc::overloaded) return "overloaded_error";
  switch (to_http(err.code).status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return to_http(err.code).status < 500 ? "invalid_request_error" : "api_error";
  }
}

std::string render_anthropic_error(const Error& err) {
  const HttpError h = to_http(err.code);
  boost::json::object inner;
  inner["type"] = anthropic_error_type(err);
  inner["message"] = err.message.empty() ? h.default_message : std::string_view(err.message);
  boost::json::object outer;
  outer["type"] = "error";
  outer["error"] = std::move(inner);
  return boost::json::serialize(outer);
}

}  // namespace core
