#include "core/admin_json.hpp"

#include "core/ascii.hpp"
#include "core/model_rewrite.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <cctype>
#include <cmath>

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

  Result<std::optional<int>> integer(std::string_view name, long long min, long long max) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<int>{};
    const auto& v = it->value();
    if (!v.is_int64() || v.as_int64() < min || v.as_int64() > max)
      return Error{errc::invalid_request, fmt::format("'{}' must be an integer from {} to {}.", name, min, max),
                   std::string(name)};
    return std::optional<int>{static_cast<int>(v.as_int64())};
  }

  // absent -> nullopt; an array of strings each checked by `check`.
  template <class Check>
  Result<std::optional<std::vector<std::string>>> string_list(std::string_view name, std::size_t max_items,
                                                              Check check) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<std::vector<std::string>>{};
    if (!it->value().is_array())
      return Error{errc::invalid_request, fmt::format("'{}' must be an array of strings.", name), std::string(name)};
    const auto& a = it->value().as_array();
    if (a.size() > max_items)
      return Error{errc::invalid_request, fmt::format("'{}' may have at most {} entries.", name, max_items),
                   std::string(name)};
    std::vector<std::string> out;
    for (const auto& e : a) {
      if (!e.is_string())
        return Error{errc::invalid_request, fmt::format("'{}' must be an array of strings.", name), std::string(name)};
      std::string item(e.as_string());
      if (auto s = check(item); !s) return std::move(s).error();
      out.push_back(std::move(item));
    }
    return std::optional<std::vector<std::string>>{std::move(out)};
  }

  bool is_null(std::string_view name) const {
    auto it = o_.find(name);
    return it != o_.end() && it->value().is_null();
  }

  const json::value* find(std::string_view name) const {
    auto it = o_.find(name);
    return it == o_.end() ? nullptr : &it->value();
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

// Headers the gateway sends itself or that frame the message: never settable per provider.
bool reserved_header(std::string_view name) {
  for (std::string_view r : {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
                             "trailer", "upgrade", "expect", "proxy-authorization", "proxy-connection"})
    if (iequals(name, r)) return true;
  return false;
}

bool header_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
      return false;
  return true;
}

// {"Name": "value", ...} -> HeaderList; null or {} -> empty list.
Result<HeaderList> parse_header_map(const json::value& v) {
  const Error bad{errc::invalid_request,
                  "'extra_headers' must be an object of header names to string values (at most 32).",
                  "extra_headers"};
  HeaderList out;
  if (v.is_null()) return out;
  if (!v.is_object() || v.as_object().size() > 32) return bad;
  for (const auto& kv : v.as_object()) {
    const std::string_view name(kv.key().data(), kv.key().size());
    if (!header_token(name) || !kv.value().is_string()) return bad;
    if (reserved_header(name))
      return Error{errc::invalid_request, fmt::format("'extra_headers' cannot set '{}'.", name), "extra_headers"};
    const auto& value = kv.value().as_string();
    if (value.size() > 4096) return bad;
    for (unsigned char c : value)
      if ((c < 0x20 && c != '\t') || c == 0x7f) return bad;
    out.emplace_back(std::string(name), std::string(value));
  }
  return out;
}

// Azure's api-version: a short token.
Status check_api_version(const std::string& v) {
  if (v.empty() || v.size() > 64 || v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
    return Error{errc::invalid_request, "'api_version' must be a short token such as 2024-10-21.", "api_version"};
  return ok();
}

// An allowed_models entry: a model name, or a prefix ending in '*'.
Status check_model_pattern(const std::string& p) {
  const std::string_view name = !p.empty() && p.back() == '*' ? std::string_view(p).substr(0, p.size() - 1) : p;
  if (p.empty() || name.find('*') != std::string_view::npos || (!name.empty() && !valid_model_name(name)))
    return Error{errc::invalid_request,
                 "'allowed_models' entries must be model names, optionally ending in '*' (a prefix).",
                 "allowed_models"};
  return ok();
}

Status check_model_field(const std::string& name, std::string_view param) {
  if (!valid_model_name(name))
    return Error{errc::invalid_request,
                 fmt::format("'{}' must be 1-{} bytes without control characters.", param, kMaxModelName),
                 std::string(param)};
  return ok();
}

Error bad_price(std::string_view detail) {
  return Error{errc::invalid_request, fmt::format("'pricing' {}", detail), "pricing"};
}

// One price: absent or null -> unknown; else a finite number from 0 to kMaxPrice (a bound so a
// cost computed from it stays finite).
Result<std::optional<double>> parse_price(const json::object& o, std::string_view name) {
  const auto it = o.find(name);
  if (it == o.end() || it->value().is_null()) return std::optional<double>{};
  const auto& v = it->value();
  const double price = v.is_number() ? v.to_number<double>() : -1;
  if (!v.is_number() || !std::isfinite(price) || price < 0 || price > kMaxPrice)
    return bad_price(
        fmt::format("'{}' must be a number from 0 to {} (USD per million tokens) or null.", name, kMaxPrice));
  return std::optional<double>{price};
}

// {"input":..,"output":..,"cached_input":..}; null or {} -> every price unknown.
Result<Pricing> parse_pricing(const json::value& v) {
  Pricing out;
  if (v.is_null()) return out;
  if (!v.is_object())
    return bad_price("must be an object with 'input', 'output' and 'cached_input', or null.");
  const auto& o = v.as_object();
  for (const auto& kv : o) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (key != "input" && key != "output" && key != "cached_input")
      return bad_price(fmt::format("has an unknown field '{}'.", key));
  }
  std::optional<double>* const fields[] = {&out.input, &out.output, &out.cached_input};
  const std::string_view names[] = {"input", "output", "cached_input"};
  for (std::size_t i = 0; i < 3; ++i) {
    auto price = parse_price(o, names[i]);
    if (!price) return std::move(price).error();
    *fields[i] = *price;
  }
  return out;
}

// Absent -> nullopt (leave alone); present -> the prices it sets (null / {} -> all unknown).
Result<std::optional<Pricing>> optional_pricing(const Fields& f) {
  const json::value* v = f.find("pricing");
  if (!v) return std::optional<Pricing>{};
  auto parsed = parse_pricing(*v);
  if (!parsed) return std::move(parsed).error();
  return std::optional<Pricing>{*parsed};
}

// A limit: absent -> nullopt (keep); null -> optional(nullopt) (unlimited); else an integer from 1
// to kMaxLimit.
Result<std::optional<std::optional<std::int64_t>>> parse_limit(const Fields& f, std::string_view name) {
  using Patch = std::optional<std::optional<std::int64_t>>;
  const json::value* v = f.find(name);
  if (!v) return Patch{};
  if (v->is_null()) return Patch{std::optional<std::int64_t>{}};
  if (v->is_int64() && v->as_int64() >= 1 && v->as_int64() <= kMaxLimit) return Patch{v->as_int64()};
  if (v->is_uint64() && v->as_uint64() >= 1 && v->as_uint64() <= static_cast<std::uint64_t>(kMaxLimit))
    return Patch{static_cast<std::int64_t>(v->as_uint64())};
  return Error{errc::invalid_request,
               fmt::format("'{}' must be an integer from 1 to {}, or null (unlimited).", name, kMaxLimit),
               std::string(name)};
}

// "budget_usd" like a limit, but a finite number from 0 to kMaxBudgetUsd.
Result<std::optional<std::optional<double>>> parse_budget_usd(const Fields& f) {
  using Patch = std::optional<std::optional<double>>;
  const json::value* v = f.find("budget_usd");
  if (!v) return Patch{};
  if (v->is_null()) return Patch{std::optional<double>{}};
  const double usd = v->is_number() ? v->to_number<double>() : -1;
  if (!v->is_number() || !std::isfinite(usd) || usd < 0 || usd > kMaxBudgetUsd)
    return Error{errc::invalid_request,
                 fmt::format("'budget_usd' must be a number from 0 to {}, or null (unlimited).", kMaxBudgetUsd),
                 "budget_usd"};
  return Patch{usd};
}

// The key limits of a body, as a patch (create applies it to no limits).
Result<KeyLimitsPatch> parse_key_limits(const Fields& f) {
  KeyLimitsPatch p;
  std::optional<std::optional<std::int64_t>>* const fields[] = {&p.rpm, &p.rpd, &p.tpm, &p.token_budget,
                                                               &p.max_parallel};
  const std::string_view names[] = {"rpm", "rpd", "tpm", "token_budget", "max_parallel"};
  for (std::size_t i = 0; i < 5; ++i) {
    auto limit = parse_limit(f, names[i]);
    if (!limit) return std::move(limit).error();
    *fields[i] = *limit;
  }
  auto usd = parse_budget_usd(f);
  if (!usd) return std::move(usd).error();
  p.budget_usd = *usd;
  return p;
}

#define LLMGW_TRY(var, expr)                       \
  auto var##_r = (expr);                           \
  if (!var##_r) return std::move(var##_r).error(); \
  auto var = std::move(*var##_r)

json::value nullable(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::array string_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(json::string_view(s.data(), s.size()));
  return a;
}

json::value nullable(const std::optional<std::int64_t>& n) {
  return n ? json::value(*n) : json::value(nullptr);
}

json::value nullable(const std::optional<double>& d);

json::object provider_object(const Provider& p) {
  return {
      {"id", p.id},
      {"name", p.name},
      {"kind", p.kind},
      {"base_url", p.base_url},
      {"api_key_preview", p.api_key_preview.empty() ? json::value(nullptr) : json::value(p.api_key_preview)},
      {"api_version", nullable(p.api_version)},
      {"extra_headers", string_array(p.extra_header_names)},  // names only: values may be secrets
      {"rpm", nullable(p.limits.rpm)},
      {"rpd", nullable(p.limits.rpd)},
      {"is_active", p.is_active},
      {"created_at", p.created_at},
      {"updated_at", p.updated_at}};
}

json::value nullable(const std::optional<double>& d) {
  return d ? json::value(*d) : json::value(nullptr);
}

// null when no price is known; otherwise every field, unknown ones as null.
json::value pricing_value(const Pricing& p) {
  if (p.empty()) return nullptr;
  return json::object{{"input", nullable(p.input)},
                      {"output", nullable(p.output)},
                      {"cached_input", nullable(p.cached_input)}};
}

json::object route_object(const ModelRoute& r) {
  return {{"id", r.id},
          {"provider_id", r.provider_id},
          {"provider_model_name", nullable(r.provider_model_name)},
          {"priority", r.priority},
          {"weight", r.weight},
          {"pricing", pricing_value(r.pricing)},
          {"created_at", r.created_at},
          {"updated_at", r.updated_at}};
}

json::object model_object(const Model& m) {
  json::array routes;
  for (const auto& r : m.routes) routes.push_back(route_object(r));
  return {{"id", m.id},
          {"name", m.name},
          {"provider_id", m.provider_id},
          {"provider_model_name", nullable(m.provider_model_name)},
          {"strategy", to_string(m.strategy)},
          {"pricing", pricing_value(m.pricing)},
          {"routes", std::move(routes)},
          {"is_active", m.is_active},
          {"created_at", m.created_at},
          {"updated_at", m.updated_at}};
}

json::object key_object(const UserKey& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"key_prefix", k.key_prefix},
          {"is_active", k.is_active},
          {"allowed_models", string_array(k.access.allowed_models)},
          {"default_model", nullable(k.access.default_model)},
          {"rpm", nullable(k.limits.rpm)},
          {"rpd", nullable(k.limits.rpd)},
          {"tpm", nullable(k.limits.tpm)},
          {"token_budget", nullable(k.limits.token_budget)},
          {"budget_usd", nullable(k.limits.budget_usd)},
          {"max_parallel", nullable(k.limits.max_parallel)},
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
  if (auto s = f.only({"name", "kind", "api_key", "base_url", "api_version", "extra_headers", "rpm", "rpd"}); !s)
    return std::move(s).error();
  ProviderCreate c;
  LLMGW_TRY(rpm, parse_limit(f, "rpm"));
  LLMGW_TRY(rpd, parse_limit(f, "rpd"));
  c.limits.rpm = rpm.value_or(std::nullopt);
  c.limits.rpd = rpd.value_or(std::nullopt);
  LLMGW_TRY(name, f.required_string("name"));
  LLMGW_TRY(kind, f.required_string("kind"));
  LLMGW_TRY(key, f.string("api_key"));
  LLMGW_TRY(url, f.string("base_url"));
  LLMGW_TRY(version, f.string("api_version"));
  if (auto s = check_name(name); !s) return std::move(s).error();
  if (auto s = check_secret(key); !s) return std::move(s).error();
  if (version)
    if (auto s = check_api_version(*version); !s) return std::move(s).error();
  if (const auto* h = f.find("extra_headers")) {
    LLMGW_TRY(headers, parse_header_map(*h));
    c.extra_headers = std::move(headers);
  }
  c.name = std::move(name);
  c.kind = std::move(kind);
  c.api_key = std::move(key);
  c.api_version = std::move(version);
  if (url) {
    LLMGW_TRY(norm, normalize_base_url(*url));
    c.base_url = std::move(norm);
  }
  return c;
}

Result<ProviderUpdate> parse_provider_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only(
          {"name", "kind", "api_key", "base_url", "is_active", "api_version", "extra_headers", "rpm", "rpd"});
      !s)
    return std::move(s).error();
  ProviderUpdate u;
  LLMGW_TRY(rpm, parse_limit(f, "rpm"));
  LLMGW_TRY(rpd, parse_limit(f, "rpd"));
  u.rpm = rpm;
  u.rpd = rpd;
  LLMGW_TRY(name, f.string("name"));
  LLMGW_TRY(kind, f.string("kind"));
  LLMGW_TRY(key, f.string("api_key"));
  LLMGW_TRY(url, f.string("base_url"));
  LLMGW_TRY(active, f.boolean("is_active"));
  LLMGW_TRY(version, f.string_or_null("api_version"));
  if (name)
    if (auto s = check_name(*name); !s) return std::move(s).error();
  if (auto s = check_secret(key); !s) return std::move(s).error();
  if (version && *version)
    if (auto s = check_api_version(**version); !s) return std::move(s).error();
  if (const auto* h = f.find("extra_headers")) {
    LLMGW_TRY(headers, parse_header_map(*h));
    u.extra_headers = std::move(headers);
  }
  if (url) {
    LLMGW_TRY(norm, normalize_base_url(*url));
    u.base_url = std::move(norm);
  }
  u.name = std::move(name);
  u.kind = std::move(kind);
  u.api_key = std::move(key);
  u.api_version = std::move(version);
  u.is_active = active;
  return u;
}

Result<ModelCreate> parse_model_create(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "provider_id", "provider_model_name", "strategy", "pricing"}); !s)
    return std::move(s).error();
  ModelCreate c;
  LLMGW_TRY(name, f.required_string("name"));
  LLMGW_TRY(pid, f.required_string("provider_id"));
  LLMGW_TRY(pmn, f.string_or_null("provider_model_name"));
  LLMGW_TRY(strategy, f.string("strategy"));
  LLMGW_TRY(pricing, optional_pricing(f));
  if (auto s = check_model_field(name, "name"); !s) return std::move(s).error();
  if (auto s = check_uuid_field(pid, "provider_id"); !s) return std::move(s).error();
  if (pmn && *pmn)
    if (auto s = check_model_field(**pmn, "provider_model_name"); !s) return std::move(s).error();
  if (strategy) {
    const auto parsed = parse_strategy(*strategy);
    if (!parsed)
      return Error{errc::invalid_request, "'strategy' must be 'priority' or 'round_robin'.", "strategy"};
    c.strategy = *parsed;
  }
  c.name = std::move(name);
  c.provider_id = std::move(pid);
  if (pmn) c.provider_model_name = std::move(*pmn);
  c.pricing = pricing.value_or(Pricing{});
  return c;
}

Result<ModelPatch> parse_model_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "provider_id", "provider_model_name", "is_active", "strategy", "pricing"}); !s)
    return std::move(s).error();
  ModelPatch p;
  LLMGW_TRY(name, f.string("name"));
  LLMGW_TRY(pid, f.string("provider_id"));
  LLMGW_TRY(pmn, f.string_or_null("provider_model_name"));
  LLMGW_TRY(active, f.boolean("is_active"));
  LLMGW_TRY(strategy, f.string("strategy"));
  LLMGW_TRY(pricing, optional_pricing(f));
  if (name)
    if (auto s = check_model_field(*name, "name"); !s) return std::move(s).error();
  if (pid)
    if (auto s = check_uuid_field(*pid, "provider_id"); !s) return std::move(s).error();
  if (pmn && *pmn)
    if (auto s = check_model_field(**pmn, "provider_model_name"); !s) return std::move(s).error();
  if (strategy) {
    p.strategy = parse_strategy(*strategy);
    if (!p.strategy)
      return Error{errc::invalid_request, "'strategy' must be 'priority' or 'round_robin'.", "strategy"};
  }
  p.name = std::move(name);
  p.provider_id = std::move(pid);
  p.provider_model_name = std::move(pmn);
  p.is_active = active;
  p.pricing = pricing;
  return p;
}

Result<NewRoute> parse_route_create(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"provider_id", "provider_model_name", "priority", "weight", "pricing"}); !s)
    return std::move(s).error();
  NewRoute r;
  LLMGW_TRY(pid, f.required_string("provider_id"));
  LLMGW_TRY(pmn, f.string_or_null("provider_model_name"));
  LLMGW_TRY(priority, f.integer("priority", -1000000, 1000000));
  LLMGW_TRY(weight, f.integer("weight", 1, 1000000));
  LLMGW_TRY(pricing, optional_pricing(f));
  if (auto s = check_uuid_field(pid, "provider_id"); !s) return std::move(s).error();
  if (pmn && *pmn)
    if (auto s = check_model_field(**pmn, "provider_model_name"); !s) return std::move(s).error();
  r.provider_id = std::move(pid);
  if (pmn) r.provider_model_name = std::move(*pmn);
  r.priority = priority.value_or(0);
  r.weight = weight.value_or(1);
  r.pricing = pricing.value_or(Pricing{});
  return r;
}

Result<RoutePatch> parse_route_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"provider_id", "provider_model_name", "priority", "weight", "pricing"}); !s)
    return std::move(s).error();
  RoutePatch p;
  LLMGW_TRY(pid, f.string("provider_id"));
  LLMGW_TRY(pmn, f.string_or_null("provider_model_name"));
  LLMGW_TRY(priority, f.integer("priority", -1000000, 1000000));
  LLMGW_TRY(weight, f.integer("weight", 1, 1000000));
  LLMGW_TRY(pricing, optional_pricing(f));
  if (pid)
    if (auto s = check_uuid_field(*pid, "provider_id"); !s) return std::move(s).error();
  if (pmn && *pmn)
    if (auto s = check_model_field(**pmn, "provider_model_name"); !s) return std::move(s).error();
  p.provider_id = std::move(pid);
  p.provider_model_name = std::move(pmn);
  p.priority = priority;
  p.weight = weight;
  p.pricing = pricing;
  return p;
}

Result<NewUserKey> parse_key_create(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "allowed_models", "default_model", "rpm", "rpd", "tpm", "token_budget",
                       "budget_usd", "max_parallel"});
      !s)
    return std::move(s).error();
  NewUserKey k;
  LLMGW_TRY(limits, parse_key_limits(f));
  k.limits = limits.as_limits();
  LLMGW_TRY(name, f.required_string("name"));
  LLMGW_TRY(allowed, f.string_list("allowed_models", 1000, check_model_pattern));
  LLMGW_TRY(dflt, f.string_or_null("default_model"));
  if (auto s = check_name(name); !s) return std::move(s).error();
  if (dflt && *dflt)
    if (auto s = check_model_field(**dflt, "default_model"); !s) return std::move(s).error();
  k.name = std::move(name);
  if (allowed) k.access.allowed_models = std::move(*allowed);
  if (dflt) k.access.default_model = std::move(*dflt);
  return k;
}

Result<UserKeyPatch> parse_key_update(std::string_view body) {
  LLMGW_TRY(o, parse_object(body));
  Fields f(o);
  if (auto s = f.only({"name", "is_active", "allowed_models", "default_model", "rpm", "rpd", "tpm",
                       "token_budget", "budget_usd", "max_parallel", "reset_usage"});
      !s)
    return std::move(s).error();
  UserKeyPatch p;
  LLMGW_TRY(limits, parse_key_limits(f));
  LLMGW_TRY(reset, f.boolean("reset_usage"));
  p.limits = std::move(limits);
  p.reset_usage = reset.value_or(false);
  LLMGW_TRY(name, f.string("name"));
  LLMGW_TRY(active, f.boolean("is_active"));
  if (f.is_null("allowed_models")) {
    p.allowed_models = std::vector<std::string>{};  // null: no restriction, like []
  } else {
    LLMGW_TRY(allowed, f.string_list("allowed_models", 1000, check_model_pattern));
    p.allowed_models = std::move(allowed);
  }
  LLMGW_TRY(dflt, f.string_or_null("default_model"));
  if (name)
    if (auto s = check_name(*name); !s) return std::move(s).error();
  if (dflt && *dflt)
    if (auto s = check_model_field(**dflt, "default_model"); !s) return std::move(s).error();
  p.name = std::move(name);
  p.is_active = active;
  p.default_model = std::move(dflt);
  return p;
}

std::string encode_headers(const HeaderList& headers) {
  json::array a;
  for (const auto& [n, v] : headers) a.push_back(json::array{json::string_view(n), json::string_view(v)});
  return json::serialize(a);
}

std::optional<HeaderList> decode_headers(std::string_view text) {
  json::error_code ec;
  const auto v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_array()) return std::nullopt;
  HeaderList out;
  for (const auto& e : v.as_array()) {
    if (!e.is_array() || e.as_array().size() != 2 || !e.as_array()[0].is_string() || !e.as_array()[1].is_string())
      return std::nullopt;
    out.emplace_back(std::string(e.as_array()[0].as_string()), std::string(e.as_array()[1].as_string()));
  }
  return out;
}

Result<std::string> normalize_base_url(std::string_view text, std::string_view param) {
  const Error bad{errc::invalid_request,
                  fmt::format("'{}' must be an absolute http(s) URL without query or credentials.", param),
                  std::string(param)};
  // {model} is a placeholder (Azure deployment URLs): check the URL with a stand-in for it.
  std::string probe(text);
  for (auto at = probe.find("{model}"); at != std::string::npos; at = probe.find("{model}"))
    probe.replace(at, 7, "model");
  auto u = boost::urls::parse_absolute_uri(probe);
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
std::string routes_json(const std::vector<ModelRoute>& v) {
  return array_json(v, route_object);
}

std::string keys_json(const std::vector<UserKey>& v) {
  return array_json(v, key_object);
}

}  // namespace core
