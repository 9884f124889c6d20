#include "core/cache_codec.hpp"

#include <boost/json.hpp>

namespace core {
namespace {

namespace json = boost::json;

const json::object* parse_object(std::string_view text, json::value& holder) {
  json::error_code ec;
  holder = json::parse(json::string_view(text.data(), text.size()), ec);
  return ec || !holder.is_object() ? nullptr : &holder.as_object();
}

bool get(const json::object& o, const char* k, std::string& out) {
  const auto* v = o.if_contains(k);
  if (!v || !v->is_string()) return false;
  out = std::string(v->as_string());
  return true;
}

bool get(const json::object& o, const char* k, int& out) {
  const auto* v = o.if_contains(k);
  if (!v || !v->is_int64()) return false;
  out = static_cast<int>(v->as_int64());
  return true;
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(json::string_view(s.data(), s.size()));
  return a;
}

json::value price(const std::optional<double>& p) {
  return p ? json::value(*p) : json::value(nullptr);
}

std::optional<double> price_from(const json::object& o, const char* k) {
  const auto* v = o.if_contains(k);
  if (!v || !v->is_number()) return std::nullopt;
  return v->to_number<double>();
}

json::object target_object(const RouteTarget& r) {
  return {{"route_id", r.route_id},
          {"provider_id", r.provider_id},
          {"provider", r.provider_name},
          {"kind", r.provider_kind},
          {"base_url", r.base_url},
          {"upstream_model", r.upstream_model},
          {"api_version", r.api_version},
          {"priority", r.priority},
          {"weight", r.weight},
          {"price_input", price(r.pricing.input)},
          {"price_output", price(r.pricing.output)},
          {"price_cached_input", price(r.pricing.cached_input)}};
}

bool target_from(const json::object& r, RouteTarget& t) {
  t.pricing = {price_from(r, "price_input"), price_from(r, "price_output"), price_from(r, "price_cached_input")};
  return get(r, "route_id", t.route_id) && get(r, "provider_id", t.provider_id) &&
         get(r, "provider", t.provider_name) && get(r, "kind", t.provider_kind) && get(r, "base_url", t.base_url) &&
         get(r, "upstream_model", t.upstream_model) && get(r, "api_version", t.api_version) &&
         get(r, "priority", t.priority) && get(r, "weight", t.weight);
}

}  // namespace

std::string encode_response_home(const ResponseHome& h) {
  return json::serialize(json::object{{"key_id", h.key_id}, {"route", target_object(h.route)}});
}

std::optional<ResponseHome> decode_response_home(std::string_view text) {
  json::value holder;
  const auto* o = parse_object(text, holder);
  if (!o) return std::nullopt;
  ResponseHome h;
  const auto* route = o->if_contains("route");
  if (!get(*o, "key_id", h.key_id) || !route || !route->is_object() || !target_from(route->as_object(), h.route))
    return std::nullopt;
  return h;
}

std::string encode_routes(const ModelRoutes& m) {
  json::array routes;
  for (const auto& r : m.routes) routes.push_back(target_object(r));
  return json::serialize(json::object{{"model_id", m.model_id},
                                      {"model", m.model_name},
                                      {"strategy", to_string(m.strategy)},
                                      {"routes", std::move(routes)}});
}

std::optional<ModelRoutes> decode_routes(std::string_view text) {
  json::value holder;
  const auto* o = parse_object(text, holder);
  if (!o) return std::nullopt;
  ModelRoutes m;
  std::string strategy;
  if (!get(*o, "model_id", m.model_id) || !get(*o, "model", m.model_name) || !get(*o, "strategy", strategy))
    return std::nullopt;
  const auto parsed = parse_strategy(strategy);
  const auto* routes = o->if_contains("routes");
  if (!parsed || !routes || !routes->is_array() || routes->as_array().empty()) return std::nullopt;
  m.strategy = *parsed;
  for (const auto& v : routes->as_array()) {
    if (!v.is_object()) return std::nullopt;
    RouteTarget t;
    if (!target_from(v.as_object(), t)) return std::nullopt;
    m.routes.push_back(std::move(t));
  }
  return m;
}

std::string encode_key_record(const KeyRecord& k) {
  json::object o{{"id", k.id}, {"name", k.name}, {"allowed_models", strings(k.access.allowed_models)}};
  if (k.access.default_model) o["default_model"] = *k.access.default_model;
  return json::serialize(o);
}

std::optional<KeyRecord> decode_key_record(std::string_view text) {
  json::value holder;
  const auto* o = parse_object(text, holder);
  if (!o) return std::nullopt;
  KeyRecord k;
  if (!get(*o, "id", k.id) || !get(*o, "name", k.name)) return std::nullopt;
  if (const auto* allowed = o->if_contains("allowed_models")) {
    if (!allowed->is_array()) return std::nullopt;
    for (const auto& v : allowed->as_array()) {
      if (!v.is_string()) return std::nullopt;
      k.access.allowed_models.emplace_back(v.as_string());
    }
  }
  std::string default_model;
  if (get(*o, "default_model", default_model)) k.access.default_model = std::move(default_model);
  return k;
}

}  // namespace core
