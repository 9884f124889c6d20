#include "core/cache_codec.hpp"

#include <boost/json.hpp>

#include <cstdint>

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

// Limits are written only when set; absent reads back as unlimited (records written before limits
// existed). A field of the wrong type makes the whole value unreadable: never silently unlimited.
void put_limit(json::object& o, const char* k, const std::optional<std::int64_t>& v) {
  if (v) o[k] = *v;
}

bool get_limit(const json::object& o, const char* k, std::optional<std::int64_t>& out) {
  const auto* v = o.if_contains(k);
  if (!v) return true;
  if (v->is_int64()) {
    out = v->as_int64();
    return true;
  }
  return false;
}

bool get_limit(const json::object& o, const char* k, std::optional<double>& out) {
  const auto* v = o.if_contains(k);
  if (!v) return true;
  if (v->is_number()) {
    out = v->to_number<double>();
    return true;
  }
  return false;
}

json::object target_object(const RouteTarget& r) {
  json::object o{{"route_id", r.route_id},
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
  put_limit(o, "provider_rpm", r.provider_limits.rpm);
  put_limit(o, "provider_rpd", r.provider_limits.rpd);
  return o;
}

bool target_from(const json::object& r, RouteTarget& t) {
  t.pricing = {price_from(r, "price_input"), price_from(r, "price_output"), price_from(r, "price_cached_input")};
  return get(r, "route_id", t.route_id) && get(r, "provider_id", t.provider_id) &&
         get(r, "provider", t.provider_name) && get(r, "kind", t.provider_kind) && get(r, "base_url", t.base_url) &&
         get(r, "upstream_model", t.upstream_model) && get(r, "api_version", t.api_version) &&
         get(r, "priority", t.priority) && get(r, "weight", t.weight) &&
         get_limit(r, "provider_rpm", t.provider_limits.rpm) && get_limit(r, "provider_rpd", t.provider_limits.rpd);
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
  put_limit(o, "rpm", k.limits.rpm);
  put_limit(o, "rpd", k.limits.rpd);
  put_limit(o, "tpm", k.limits.tpm);
  put_limit(o, "token_budget", k.limits.token_budget);
  if (k.limits.budget_usd) o["budget_usd"] = *k.limits.budget_usd;
  put_limit(o, "max_parallel", k.limits.max_parallel);
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
  auto& l = k.limits;
  if (!get_limit(*o, "rpm", l.rpm) || !get_limit(*o, "rpd", l.rpd) || !get_limit(*o, "tpm", l.tpm) ||
      !get_limit(*o, "token_budget", l.token_budget) || !get_limit(*o, "budget_usd", l.budget_usd) ||
      !get_limit(*o, "max_parallel", l.max_parallel))
    return std::nullopt;
  return k;
}

}  // namespace core
