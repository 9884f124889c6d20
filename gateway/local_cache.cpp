#include "gateway/local_cache.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>

namespace gw {

TargetEntry make_target_entry(core::RouteTarget r) {
  TargetEntry e;
  // Azure deployment URLs name the deployment in the path: {model} is the route's upstream model.
  std::string base = r.base_url;
  const std::string model = boost::urls::encode(r.upstream_model, boost::urls::pchars);
  for (auto at = base.find("{model}"); at != std::string::npos; at = base.find("{model}", at + model.size()))
    base.replace(at, 7, model);
  if (auto t = core::parse_upstream_target(base)) e.target = std::move(*t);
  e.kind = providers::find_kind(r.provider_kind);
  e.route = std::move(r);
  return e;
}

ModelPtr make_model_entry(core::ModelRoutes m) {
  auto e = std::make_shared<ModelEntry>();
  e->targets.reserve(m.routes.size());
  for (const auto& r : m.routes) e->targets.push_back(make_target_entry(r));
  e->model = std::move(m);
  return e;
}

}  // namespace gw
