#pragma once
// Admin API bodies: strict parsing of requests (clear 400s, param names the field) and rendering
// of responses. Secrets never appear in what these render.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace core {

struct ProviderCreate {
  std::string name, kind;
  std::optional<std::string> api_key, base_url, api_version;
  std::optional<HeaderList> extra_headers;
  ProviderLimits limits;  // "rpm", "rpd"
};
struct ProviderUpdate {
  std::optional<std::string> name, kind, api_key, base_url;
  std::optional<std::optional<std::string>> api_version;  // null removes it
  std::optional<HeaderList> extra_headers;               // {} or null removes them
  std::optional<std::optional<std::int64_t>> rpm, rpd;    // null removes the limit
  std::optional<bool> is_active;
};
struct ModelCreate {
  std::string name, provider_id;
  std::optional<std::string> provider_model_name;
  Strategy strategy = Strategy::priority;
  Pricing pricing;  // the model's prices (a route's own prices override them)
};

Result<ProviderCreate> parse_provider_create(std::string_view body);
Result<ProviderUpdate> parse_provider_update(std::string_view body);
Result<ModelCreate> parse_model_create(std::string_view body);
Result<ModelPatch> parse_model_update(std::string_view body);
Result<NewRoute> parse_route_create(std::string_view body);
Result<RoutePatch> parse_route_update(std::string_view body);
Result<NewUserKey> parse_key_create(std::string_view body);
Result<UserKeyPatch> parse_key_update(std::string_view body);

// "pricing" in model and route bodies: {"input": 2.5, "output": 10, "cached_input": 1.25}, USD per
// million tokens. Each field is optional and may be null (unknown); a value is a finite number from 0
// to kMaxPrice. null or {} is a Pricing with every field unknown (which clears prices in an update).
inline constexpr double kMaxPrice = 1'000'000;

// Limits in key and provider bodies. "rpm", "rpd", "tpm", "token_budget", "max_parallel" (keys) and
// "rpm", "rpd" (providers): an integer from 1 to kMaxLimit, or null (unlimited). "budget_usd" (keys):
// a finite number from 0 to kMaxBudgetUsd, or null. On create they fill NewUserKey::limits /
// ProviderCreate::limits; on update an absent field keeps the limit, null removes it, a value sets
// it. A key update also takes "reset_usage": true (the budgets count from zero again; false is
// accepted and does nothing). Rendered at the top level of key / provider JSON, null when unlimited.
inline constexpr std::int64_t kMaxLimit = 1'000'000'000'000;
inline constexpr double kMaxBudgetUsd = 1'000'000'000;

// http(s)://host[:port][/path], no query/fragment/userinfo; returns it without trailing '/'. The
// path may contain the placeholder {model} (Azure deployment URLs), replaced per request.
Result<std::string> normalize_base_url(std::string_view url, std::string_view param = "base_url");

// Extra provider headers <-> the JSON that is sealed at rest.
std::string encode_headers(const HeaderList& headers);
std::optional<HeaderList> decode_headers(std::string_view json);

std::string to_json(const Provider& p);
std::string to_json(const Model& m);
std::string to_json(const UserKey& k);
// The one response that contains a plaintext user key: creation and rotation.
std::string to_json_with_secret(const UserKey& k, std::string_view plaintext_key);
std::string providers_json(const std::vector<Provider>& v);
std::string models_json(const std::vector<Model>& v);
std::string routes_json(const std::vector<ModelRoute>& v);
std::string keys_json(const std::vector<UserKey>& v);

}  // namespace core
