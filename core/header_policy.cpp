#include "core/header_policy.hpp"

#include "core/ascii.hpp"

namespace core {

bool forward_to_upstream(std::string_view n) noexcept {
  return iequals(n, "openai-organization") || iequals(n, "openai-project") || iequals(n, "openai-beta") ||
         iequals(n, "anthropic-beta");
}

bool forward_to_client(std::string_view n) noexcept {
  return iequals(n, "content-type") || iequals(n, "openai-processing-ms") || iequals(n, "openai-version") ||
         iequals(n, "openai-organization") || iequals(n, "retry-after") || iequals(n, "retry-after-ms") ||
         istarts_with(n, "x-ratelimit-") || istarts_with(n, "anthropic-ratelimit-") || iequals(n, "request-id");
}

bool forward_to_limited_client(std::string_view n) noexcept {
  return forward_to_client(n) && !istarts_with(n, "x-ratelimit-");
}

}  // namespace core
