#pragma once
// Building the gateway's own responses. error_response is the only place that turns a core::Error
// into HTTP (via core::to_http).
#include "core/result.hpp"
#include "gateway/http.hpp"

#include <string>

namespace gw {

Response json_response(const Request& req, http::status status, std::string body);
Response error_response(const Request& req, const core::Error& err);
Response empty_response(const Request& req, http::status status);

}  // namespace gw
