#pragma once
// A provider base URL split into what the relay needs to connect and to build request targets.
#include "core/result.hpp"

#include <string>
#include <string_view>

namespace core {

struct UpstreamTarget {
  bool tls = false;
  std::string host;         // for DNS, SNI and certificate checks
  std::string port;         // "443" / "80" / explicit
  std::string host_header;  // host[:port] as sent in Host
  std::string base_path;    // "/v1", never with a trailing slash
  std::string pool_key;     // "https://host:port": connections are shared per key
};

Result<UpstreamTarget> parse_upstream_target(std::string_view base_url);

// base_path + suffix (suffix starts with '/', may carry a query), plus api-version=<v> in the query
// when api_version is set (Azure).
std::string upstream_request_target(const UpstreamTarget& t, std::string_view suffix,
                                    std::string_view api_version = {});

}  // namespace core
