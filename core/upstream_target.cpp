#include "core/upstream_target.hpp"

#include <boost/url/parse.hpp>

namespace core {

Result<UpstreamTarget> parse_upstream_target(std::string_view base_url) {
  auto u = boost::urls::parse_absolute_uri(base_url);
  if (!u || u->host().empty() || (u->scheme() != "http" && u->scheme() != "https"))
    return Error{errc::internal, "provider base_url is not usable"};
  UpstreamTarget t;
  t.tls = u->scheme() == "https";
  t.host = u->host();
  if (t.host.size() > 2 && t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.host_header = u->has_port() ? std::string(u->encoded_host_and_port()) : std::string(u->encoded_host());
  t.base_path = std::string(u->encoded_path());
  while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  t.pool_key = std::string(u->scheme()) + "://" + t.host + ":" + t.port;
  return t;
}

std::string upstream_request_target(const UpstreamTarget& t, std::string_view suffix, std::string_view api_version) {
  std::string s;
  s.reserve(t.base_path.size() + suffix.size() + (api_version.empty() ? 0 : 13 + api_version.size()));
  s.append(t.base_path).append(suffix);
  if (!api_version.empty())
    s.append(suffix.find('?') == std::string_view::npos ? "?" : "&").append("api-version=").append(api_version);
  return s;
}

}  // namespace core
