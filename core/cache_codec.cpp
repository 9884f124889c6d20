#include "core/cache_codec.hpp"

#include <boost/json.hpp>

namespace core {

std::string encode_route(const Route& r) {
  return boost::json::serialize(boost::json::object{{"model_id", r.model_id},
                                                    {"model", r.model_name},
                                                    {"provider_id", r.provider_id},
                                                    {"kind", r.provider_kind},
                                                    {"base_url", r.base_url},
                                                    {"upstream_model", r.upstream_model}});
}

std::optional<Route> decode_route(std::string_view text) {
  boost::json::error_code ec;
  auto v = boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  auto str = [&](const char* k, std::string& out) {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_string()) return false;
    out = std::string(it->value().as_string());
    return true;
  };
  Route r;
  if (!str("model_id", r.model_id) || !str("model", r.model_name) || !str("provider_id", r.provider_id) ||
      !str("kind", r.provider_kind) || !str("base_url", r.base_url) ||
      !str("upstream_model", r.upstream_model))
    return std::nullopt;
  return r;
}

std::string encode_key_record(const KeyRecord& k) {
  return boost::json::serialize(boost::json::object{{"id", k.id}, {"name", k.name}});
}

std::optional<KeyRecord> decode_key_record(std::string_view text) {
  boost::json::error_code ec;
  auto v = boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  const auto* id = o.if_contains("id");
  const auto* name = o.if_contains("name");
  if (!id || !id->is_string() || !name || !name->is_string()) return std::nullopt;
  return KeyRecord{std::string(id->as_string()), std::string(name->as_string())};
}

}  // namespace core
