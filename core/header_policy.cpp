#include "core/header_policy.hpp"

#include "core/ascii.hpp"

namespace core {

bool forward_to_upstream(std::string_view n) noexcept {
  return iequals(n, "openai-organization") || iequals(n, "openai-project") || iequals(n, "openai-beta") ||
         iequals(n, "anthropic-beta");
}

bool forward_to_client(std::string_view n) noexcept {
  // Every field of every response comes through here: the first letter picks the few names that
  // can match (most fields, such as date, server or connection, are refused after one switch).
  if (n.empty()) return false;
  switch (ascii_lower(n.front())) {
    case 'c':
      return iequals(n, "content-type");
    case 'o':
      return iequals(n, "openai-processing-ms") || iequals(n, "openai-version") ||
             iequals(n, "openai-organization");
    case 'r':
      return iequals(n, "retry-after") || iequals(n, "retry-after-ms") || iequals(n, "request-id");
    case 'x':
      return istarts_with(n, "x-ratelimit-");
    case 'a':
      return istarts_with(n, "anthropic-ratelimit-");
    default:
      return false;
  }
}

bool forward_to_limited_client(std::string_view n) noexcept {
  return forward_to_client(n) && !istarts_with(n, "x-ratelimit-");
}

}  // namespace core
