#pragma once
// Every expected failure in the gateway is one of these codes. Layers return them as values
// (core::Result<T> or boost::system::error_code); exactly one function, to_http(), decides what
// a client sees for each.
#include <boost/system/error_code.hpp>

#include <string>
#include <string_view>
#include <type_traits>

namespace core {

enum class errc {
  ok = 0,
  // client errors
  invalid_json,        // body is not JSON / not the expected JSON shape
  invalid_request,     // JSON is fine but a field is missing, has the wrong type or value
  not_found,           // no such route or resource
  method_not_allowed,  // route exists, method does not
  body_too_large,      // 413
  header_too_large,    // 431
  unsupported_media_type,
  missing_api_key,  // 401, no Authorization header
  invalid_api_key,  // 401, unknown / revoked key
  model_not_found,  // 404 on /v1
  model_not_allowed,  // 403: the key's allowlist excludes the model
  conflict,         // 409 duplicate name, still in use
  request_timeout,  // client too slow to send its request
  not_implemented,  // 501: a transfer coding we do not support
  version_not_supported,  // 505
  rate_limit_exceeded,    // 429: a key's or every route's provider's rpm / rpd / tpm / max_parallel
  insufficient_quota,     // 429: a key's token or cost budget is spent
  // server side
  upstream_unavailable,  // connect / TLS failed
  upstream_timeout,      // no response header in time
  upstream_protocol,     // upstream spoke broken HTTP
  db_unavailable,
  cache_unavailable,
  overloaded,  // a bounded queue or pool is full
  shutting_down,
  internal,
};

const boost::system::error_category& gateway_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), gateway_category()};
}

// Short, stable, snake_case name; also the "code" field clients see.
std::string_view to_string(errc e) noexcept;

}  // namespace core

template <>
struct boost::system::is_error_code_enum<core::errc> : std::true_type {};
