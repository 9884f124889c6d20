#pragma once
// Value types shared by storage, cache and the gateway. Plain data, no behaviour.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace core {

// Extra headers sent with every request to a provider, in order: (name, value).
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Limits of a key (unset = unlimited). Budgets count from the last reset (PUT reset_usage).
struct KeyLimits {
  std::optional<std::int64_t> rpm, rpd, tpm;  // requests / minute, requests / UTC day, tokens / minute
  std::optional<std::int64_t> token_budget;   // total tokens
  std::optional<double> budget_usd;           // total cost, from the model prices
  std::optional<std::int64_t> max_parallel;   // requests in flight at once
  bool any() const noexcept { return rpm || rpd || tpm || token_budget || budget_usd || max_parallel; }
};

// A change of limits: an absent field stays, null removes the limit, a value sets it.
struct KeyLimitsPatch {
  std::optional<std::optional<std::int64_t>> rpm, rpd, tpm, token_budget, max_parallel;
  std::optional<std::optional<double>> budget_usd;

  // The limits this patch sets (absent fields: no limit), as a new key gets them.
  KeyLimits as_limits() const {
    const auto value = [](const auto& field) { return field.value_or(std::nullopt); };
    return {.rpm = value(rpm),
            .rpd = value(rpd),
            .tpm = value(tpm),
            .token_budget = value(token_budget),
            .budget_usd = value(budget_usd),
            .max_parallel = value(max_parallel)};
  }
};

// Limits of a provider (one upstream credential), shared by every key using it.
struct ProviderLimits {
  std::optional<std::int64_t> rpm, rpd;
  bool any() const noexcept { return rpm || rpd; }
};


struct Provider {
  std::string id;  // uuid
  std::string name;
  std::string kind;             // see providers/registry.cpp
  std::string base_url;         // no trailing slash; may contain {model} (Azure deployments)
  std::string api_key_enc;      // base64(nonce || ciphertext || tag); empty when no key
  std::string api_key_preview;  // e.g. "sk-p...wxyz"; empty when no key
  std::string extra_headers_enc;  // sealed JSON of a HeaderList; empty when none
  std::vector<std::string> extra_header_names;  // for display; values are never shown
  std::optional<std::string> api_version;  // Azure: sent as ?api-version=
  ProviderLimits limits;
  bool is_active = true;
  std::string created_at;  // RFC 3339 UTC
  std::string updated_at;
};

struct NewProvider {
  std::string name, kind, base_url, api_key_enc, api_key_preview, extra_headers_enc;
  std::vector<std::string> extra_header_names;
  std::optional<std::string> api_version;
  ProviderLimits limits;
};

struct ProviderPatch {
  std::optional<std::string> name, kind, base_url;
  std::optional<std::string> api_key_enc, api_key_preview;  // both set together
  std::optional<std::string> extra_headers_enc;             // '' removes them
  std::optional<std::vector<std::string>> extra_header_names;
  std::optional<std::optional<std::string>> api_version;  // set to null allowed
  std::optional<std::optional<std::int64_t>> rpm, rpd;    // null removes the limit
  std::optional<bool> is_active;
};

// What the hot path needs of a provider beyond the route: credentials, decrypted, in process
// memory only.
struct ProviderSecrets {
  std::string api_key;
  HeaderList extra_headers;
};

// USD per million tokens. Unknown prices stay unset: the cost is then unknown (null), not 0.
struct Pricing {
  std::optional<double> input, output, cached_input;
  bool empty() const noexcept { return !input && !output && !cached_input; }
};

enum class Strategy : unsigned char { priority, round_robin };
std::string_view to_string(Strategy s) noexcept;
std::optional<Strategy> parse_strategy(std::string_view s) noexcept;

// One way to serve a model: a provider, the name the provider knows it by, and how to choose.
struct ModelRoute {
  std::string id;
  std::string model_id;
  std::string provider_id;
  std::optional<std::string> provider_model_name;  // null -> the model's public name
  int priority = 0;                                // 0 first
  int weight = 1;                                  // round_robin share
  Pricing pricing;                                 // overrides the model's, field by field
  std::string created_at;
  std::string updated_at;
};

struct NewRoute {
  std::string provider_id;
  std::optional<std::string> provider_model_name;
  int priority = 0;
  int weight = 1;
  Pricing pricing;
};

struct RoutePatch {
  std::optional<std::string> provider_id;
  std::optional<std::optional<std::string>> provider_model_name;
  std::optional<int> priority, weight;
  std::optional<Pricing> pricing;  // replaces the route's prices ({} clears)
};

struct Model {
  std::string id;
  std::string name;  // public name clients send as "model"
  // The first route's provider and upstream name (what the single-route API always showed).
  std::string provider_id;
  std::optional<std::string> provider_model_name;
  Strategy strategy = Strategy::priority;
  Pricing pricing;
  std::vector<ModelRoute> routes;  // priority, then creation order
  bool is_active = true;
  std::string created_at;
  std::string updated_at;
};

struct NewModel {
  std::string name, provider_id;
  std::optional<std::string> provider_model_name;
  Strategy strategy = Strategy::priority;
  Pricing pricing;  // the model's; its first route starts without prices of its own
};

struct ModelPatch {
  std::optional<std::string> name, provider_id;  // provider_id / name: the first route's
  std::optional<std::optional<std::string>> provider_model_name;  // set to null allowed
  std::optional<Strategy> strategy;
  std::optional<Pricing> pricing;  // replaces the model's prices ({} or null clears)
  std::optional<bool> is_active;
};

// Which models a key may use: empty = all; an entry ending in '*' is a prefix.
struct KeyAccess {
  std::vector<std::string> allowed_models;
  std::optional<std::string> default_model;  // used when a request names no model
};

struct UserKey {
  std::string id;
  std::string name;
  std::string key_prefix;  // first chars of the key, for humans to recognise it
  bool is_active = true;
  KeyAccess access;
  KeyLimits limits;
  std::string created_at;
  std::string updated_at;
  std::optional<std::string> last_used_at;
};

struct NewUserKey {
  std::string name;
  KeyAccess access;
  KeyLimits limits;
};

struct UserKeyPatch {
  std::optional<std::string> name;
  std::optional<bool> is_active;
  std::optional<std::vector<std::string>> allowed_models;
  std::optional<std::optional<std::string>> default_model;  // set to null allowed
  KeyLimitsPatch limits;
  bool reset_usage = false;  // the budgets start again from zero
};

// One candidate route as the hot path sees it. No secret.
struct RouteTarget {
  std::string route_id;
  std::string provider_id;
  std::string provider_name;
  std::string provider_kind;
  std::string base_url;
  std::string upstream_model;  // provider_model_name or the public name
  std::string api_version;     // empty: none
  int priority = 0;
  int weight = 1;
  Pricing pricing;                // the route's own prices, else the model's
  ProviderLimits provider_limits;  // the provider's rpm / rpd
};

// One /v1 request of an authenticated key, as the request log stores it. Never a body.
struct RequestLog {
  std::string request_id;
  std::string upstream_request_id;  // empty: none
  std::string key_id;               // empty: none
  std::string model, provider, upstream_model;
  int status = 0;
  std::string error_code;  // empty: none
  std::int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0, cache_creation_tokens = 0,
               total_tokens = 0;
  std::optional<double> cost;  // USD; unknown price -> none
  double latency_ms = 0;
  std::optional<double> ttft_ms;
  bool is_stream = false;
  int attempts = 0;
  std::string client_addr;
  std::int64_t created_at_us = 0;  // microseconds since the Unix epoch (UTC)
};

// Where a Responses API object was created: which key may reach it, and the route it lives on.
struct ResponseHome {
  std::string key_id;
  RouteTarget route;
};

// What a public model name resolves to: its usable routes (active, live providers), in
// (priority, creation) order.
struct ModelRoutes {
  std::string model_id;
  std::string model_name;
  Strategy strategy = Strategy::priority;
  std::vector<RouteTarget> routes;
};

// What authentication yields and the hot path carries: immutable, shared, cached per worker and
// in Redis (as JSON, by key hash). No secret: the key itself is never stored.
struct KeyRecord {
  std::string id;
  std::string name;
  KeyAccess access;
  KeyLimits limits;
};

}  // namespace core
