#pragma once
// The gateway's own responses (everything except relayed upstream responses). error_response is
// the only place that turns a core::Error into HTTP (via core::to_http), in the API's shape.
#include "core/result.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gw {

// Which error shape a path speaks: OpenAI's everywhere, Anthropic's on /v1/messages.
enum class Flavor : unsigned char { openai, anthropic };

struct Response {
  unsigned status = 200;
  std::optional<std::string> reason;  // default: the standard phrase for `status`
  std::string body;
  std::string content_type = "application/json";  // empty: no Content-Type
  std::vector<std::pair<std::string, std::string>> headers;
};

Response json_response(unsigned status, std::string body);
Response error_response(Flavor flavor, const core::Error& err);
Response empty_response(unsigned status);

// Head of `res` for the client: status line, fields, Content-Length, X-Request-Id, Connection.
void render_response_head(const Response& res, int version_minor, bool keep_alive, std::string_view request_id,
                          std::string& out);

}  // namespace gw
