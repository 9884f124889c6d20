#include "core/admin_json.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

namespace core {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxName = 200;

Result<json::object> parse_object(std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) return Error{errc::invalid_json, "The request body is not valid JSON."};
  if (!v.is_object()) return Error{errc::invalid_request, "The request body must be a JSON object."};
  return std::move(v.as_object());
}

// Reads the object's fields, rejecting unknown ones so typos do not silently do nothing.
class Fields {
 public:
  explicit Fields(const json::object& o) : o_(o) {}

  Status only(std::initializer_list<std::string_view> allowed) const {
    for (const auto& kv : o_) {
      bool ok = false;
      for (auto a : allowed) ok = ok || kv.key() == a;
      if (!ok)
        return Error{errc::invalid_request, fmt::format("Unknown field '{}'.", std::string_view(kv.key())),
                     std::string(kv.key())};
    }
    return core::ok();
  }

  // absent -> nullopt; null -> error unless nullable (then optional(nullopt) via string_or_null)
  Result<std::optional<std::string>> string(std::string_view name, bool non_empty = true) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<std::string>{};
    if (!it->value().is_string())
      return Error{errc::invalid_request, fmt::format("'{}' must be a string.", name), std::string(name)};
    std::string s(it->value().as_string());
    if (non_empty && s.empty())
      return Error{errc::invalid_request, fmt::format("'{}' must not be empty.", name), std::string(name)};
    if (s.size() > kMaxName * 20)
      return Error{errc::invalid_request, fmt::format("'{}' is too long.", name), std::string(name)};
    return std::optional<std::string>{std::move(s)};
  }

  Result<std::string> required_string(std::string_view name) const {
    auto r = string(name);
    if (!r) return std::move(r).error();
    if (!*r) return Error{errc::invalid_request, fmt::format("'{}' is required.", name), std::string(name)};
    return std::move(**r);
  }

  Result<std::optional<std::optional<std::string>>> string_or_null(std::string_view name) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<std::optional<std::string>>{};
    if (it->value().is_null()) return std::optional<std::optional<std::string>>{std::optional<std::string>{}};
    auto r = string(name);
    if (!r) return std::move(r).error();
    return std::optional<std::optional<std::string>>{std::move(*r)};
  }

  Result<std::optional<bool>> boolean(std::string_view name) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<bool>{};
    if (!it->value().is_bool())
      return Error{errc::invalid_request, fmt::format("'{}' must be a boolean.", name), std::string(name)};
    return std::optional<bool>{it->value().as_bool()};
  }

 private:
  const json::object& o_;
};

Status check_name(const std::string& name, std::string_view param = "name") {
  if (name.size() > kMaxName)
    return Error{errc::invalid_request, fmt::format("'{}' must be at most {} characters.", param, kMaxName),
                 std::string(param)};
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return Error{errc::invalid_request, fmt::format("'{}' must not contain control characters.", param),
                   std::string(param)};
  return ok();
}

// Sent upstream as a header value: CR, LF or other control characters would inject headers.
Status check_secret(const std::optional<std::string>& key) {
  if (!key) return ok();
  for (unsigned char c : *key)
    if (c < 0x20 || c == 0x7f)
      return Error{errc::invalid_request, "'api_key' must not contain control characters.", "api_key"};
  return ok();
}

Status check_uuid_field(const std::string& v, std::string_view param) {
  if (v.size() != 36 || v.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos || v[8] != '-' ||
      v[13] != '-' || v[18] != '-' || v[23] != '-')
    return Error{errc::invalid_request, fmt::format("'{}' must be a UUID.", param), std::string(param)};
  return ok();
}

#define LLMGW_TRY(var, expr)                       \
  auto var##_r = (expr);                           \
  if (!var##_r) return std::move(var##_r).error(); \
  auto var = std::move(*var##_r)

json::value nullable(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::object provider_object(const Provider& p) {
  return {
      {"id", p.id},
      {"name", p.name},
      {"kind", p.kind},
      {"base_url", p.base_url},
      {"api_key_preview", p.api_key_preview.empty() ? json::value(nullptr) : json::value(p.api_key_preview)},
      {"is_active", p.is_active},
      {"created_at", p.created_at},
      {"updated_at", p.updated_at}};
}

json::object model_object(const Model& m) {
  return {{"id", m.id},
          {"name", m.name},
          {"provider_id", m.provider_id},
          {"provider_model_name", nullable(m.provider_model_name)},
          {"is_active", m.is_active},
          {"created_at", m.created_at},
          {"updated_at", m.updated_at}};
}

json::object key_object(const UserKey& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"key_prefix", k.key_prefix},
          {"is_active", k.is_active},
          {"created_at", k.created_at},
          {"updated_at", k.updated_at},
          {"last_used_at", nullable(k.last_used_at)}};
}

template <class T, class F>
std::string array_json(const std::vector<T>& v, F f) {
  json::array a;
  a.reserve(v.size());
  for (const auto& x : v) a.emplace_back(f(x));
  return json::serialize(a);
}

}  // namespace

Result<ProviderCreate> parse_provider_create(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "kind", "api_key", "base_url"}); !s) return std::move(s).error();
  ProviderCreate c;
  LLMGW_TRY(name, f.required_string("name"));
  LLMGW_TRY(kind, f.required_string("kind"));
  LLMGW_TRY(key, f.string("api_key"));
  LLMGW_TRY(url, f.string("base_url"));
  if (auto s = check_name(name); !s) return std::move(s).error();
  if (auto s = check_secret(key); !s) return std::move(s).error();
  c.name = std::move(name);
  c.kind = std::move(kind);
  c.api_key = std::move(key);
  if (url) {
    LLMGW_TRY(norm, normalize_base_url(*url));
    c.base_url = std::move(norm);
  }
  return c;
}

Result<ProviderUpdate> parse_provider_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "kind", "api_key", "base_url", "is_active"}); !s) return std::move(s).error();
  ProviderUpdate u;
  LLMGW_TRY(name, f.string("name"));
  LLMGW_TRY(kind, f.string("kind"));
  LLMGW_TRY(key, f.string("api_key"));
  LLMGW_TRY(url, f.string("base_url"));
  LLMGW_TRY(active, f.boolean("is_active"));
  if (name)
    if (auto s = check_name(*name); !s) return std::move(s).error();
  if (auto s = check_secret(key); !s) return std::move(s).error();
  if (url) {
    LLMGW_TRY(norm, normalize_base_url(*url));
    u.base_url = std::move(norm);
  }
  u.name = std::move(name);
  u.kind = std::move(kind);
  u.api_key = std::move(key);
  u.is_active = active;
  return u;
}

Result<ModelCreate> parse_model_create(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "provider_id", "provider_model_name"}); !s) return std::move(s).error();
  ModelCreate c;
  LLMGW_TRY(name, f.required_string("name"));
  LLMGW_TRY(pid, f.required_string("provider_id"));
  LLMGW_TRY(pmn, f.string_or_null("provider_model_name"));
  if (auto s = check_name(name); !s) return std::move(s).error();
  if (auto s = check_uuid_field(pid, "provider_id"); !s) return std::move(s).error();
  if (pmn && *pmn)
    if (auto s = check_name(**pmn, "provider_model_name"); !s) return std::move(s).error();
  c.name = std::move(name);
  c.provider_id = std::move(pid);
  if (pmn) c.provider_model_name = std::move(*pmn);
  return c;
}

Result<ModelPatch> parse_model_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "provider_id", "provider_model_name", "is_active"}); !s)
    return std::move(s).error();
  ModelPatch p;
  LLMGW_TRY(name, f.string("name"));
  LLMGW_TRY(pid, f.string("provider_id"));
  LLMGW_TRY(pmn, f.string_or_null("provider_model_name"));
  LLMGW_TRY(active, f.boolean("is_active"));
  if (name)
    if (auto s = check_name(*name); !s) return std::move(s).error();
  if (pid)
    if (auto s = check_uuid_field(*pid, "provider_id"); !s) return std::move(s).error();
  if (pmn && *pmn)
    if (auto s = check_name(**pmn, "provider_model_name"); !s) return std::move(s).error();
  p.name = std::move(name);
  p.provider_id = std::move(pid);
  p.provider_model_name = std::move(pmn);
  p.is_active = active;
  return p;
}

Result<KeyCreate> parse_key_create(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name"}); !s) return std::move(s).error();
  LLMGW_TRY(name, f.required_string("name"));
  if (auto s = check_name(name); !s) return std::move(s).error();
  return KeyCreate{std::move(name)};
}

Result<UserKeyPatch> parse_key_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "is_active"}); !s) return std::move(s).error();
  UserKeyPatch p;
  LLMGW_TRY(name, f.string("name"));
  LLMGW_TRY(active, f.boolean("is_active"));
  if (name)
    if (auto s = check_name(*name); !s) return std::move(s).error();
  p.name = std::move(name);
  p.is_active = active;
  return p;
}

Result<std::string> normalize_base_url(std::string_view text, std::string_view param) {
  const Error bad{errc::invalid_request,
                  fmt::format("'{}' must be an absolute http(s) URL without query or credentials.", param),
                  std::string(param)};
  auto u = boost::urls::parse_absolute_uri(text);
  if (!u) return bad;
  if ((u->scheme() != "http" && u->scheme() != "https") || u->host().empty() || u->has_userinfo() ||
      u->has_query() || u->has_fragment() || (u->has_port() && u->port_number() == 0))
    return bad;
  std::string s(text);
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string to_json(const Provider& p) {
  return json::serialize(provider_object(p));
}
std::string to_json(const Model& m) {
  return json::serialize(model_object(m));
}
std::string to_json(const UserKey& k) {
  return json::serialize(key_object(k));
}

std::string to_json_with_secret(const UserKey& k, std::string_view plaintext_key) {
  json::object o = key_object(k);
  o["key"] = json::string_view(plaintext_key.data(), plaintext_key.size());
  return json::serialize(o);
}

std::string providers_json(const std::vector<Provider>& v) {
  return array_json(v, provider_object);
}
std::string models_json(const std::vector<Model>& v) {
  return array_json(v, model_object);
}
std::string keys_json(const std::vector<UserKey>& v) {
  return array_json(v, key_object);
}

}  // namespace core
