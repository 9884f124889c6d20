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
};

HttpError to_http(errc e) noexcept;

// {"error":{"message":...,"type":...,"param":...|null,"code":...}}
std::string render_openai_error(const Error& err);

}  // namespace core
