#include "core/error.hpp"

namespace core {
namespace {

class GatewayCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "llm-gateway"; }
  std::string message(int ev) const override { return std::string(to_string(static_cast<errc>(ev))); }
};

}  // namespace

const boost::system::error_category& gateway_category() noexcept {
  static const GatewayCategory category;
  return category;
}

std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::invalid_json:
      return "invalid_json";
    case errc::invalid_request:
      return "invalid_request";
    case errc::not_found:
      return "not_found";
    case errc::method_not_allowed:
      return "method_not_allowed";
    case errc::body_too_large:
      return "request_too_large";
    case errc::header_too_large:
      return "request_header_fields_too_large";
    case errc::unsupported_media_type:
      return "unsupported_media_type";
    case errc::missing_api_key:
      return "missing_api_key";
    case errc::invalid_api_key:
      return "invalid_api_key";
    case errc::model_not_found:
      return "model_not_found";
    case errc::model_not_allowed:
      return "model_not_allowed";
    case errc::conflict:
      return "conflict";
    case errc::request_timeout:
      return "request_timeout";
    case errc::not_implemented:
      return "not_implemented";
    case errc::version_not_supported:
      return "http_version_not_supported";
    case errc::rate_limit_exceeded:
      return "rate_limit_exceeded";
    case errc::insufficient_quota:
      return "insufficient_quota";
    case errc::upstream_unavailable:
      return "upstream_unavailable";
    case errc::upstream_timeout:
      return "upstream_timeout";
    case errc::upstream_protocol:
      return "upstream_protocol_error";
    case errc::db_unavailable:
      return "database_unavailable";
    case errc::cache_unavailable:
      return "cache_unavailable";
    case errc::overloaded:
      return "overloaded";
    case errc::shutting_down:
      return "shutting_down";
    case errc::internal:
      return "internal_error";
  }
  return "internal_error";
}

}  // namespace core
