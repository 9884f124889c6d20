#include "core/header_policy.hpp"

namespace core {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

bool forward_to_upstream(std::string_view n) noexcept {
  return iequals(n, "openai-organization") || iequals(n, "openai-project") || iequals(n, "openai-beta") ||
         iequals(n, "x-request-id");
}

bool forward_to_client(std::string_view n) noexcept {
  return iequals(n, "content-type") || iequals(n, "openai-processing-ms") || iequals(n, "openai-version") ||
         iequals(n, "openai-organization") || iequals(n, "retry-after") || iequals(n, "retry-after-ms") ||
         istarts_with(n, "x-ratelimit-");
}

}  // namespace core
