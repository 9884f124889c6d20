#pragma once
// The one place that decides how an error looks over HTTP.
#include "core/result.hpp"

#include <string>
#include <string_view>

namespace core {

struct HttpError {
  int status;
  std::string_view type;  // OpenAI "type": invalid_request_error, authentication_error, ...
  std::string_view code;  // OpenAI "code"
  std::string_view default_message;
  int retry_after_seconds = 0;  // > 0: send Retry-After (transient overload)
};

HttpError to_http(errc e) noexcept;

// {"error":{"message":...,"type":...,"param":...|null,"code":...}}
std::string render_openai_error(const Error& err);
// {"type":"error","error":{"type":...,"message":...}} (Anthropic's Messages API shape)
std::string render_anthropic_error(const Error& err);
// Anthropic's error type for a status: invalid_request_error, authentication_error, ...
std::string_view anthropic_error_type(const Error& err) noexcept;

}  // namespace core
