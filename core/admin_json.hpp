#pragma once
// Admin API bodies: strict parsing of requests (clear 400s, param names the field) and rendering
// of responses. Secrets never appear in what these render.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace core {

struct ProviderCreate {
  std::string name, kind;
  std::optional<std::string> api_key, base_url;
};
struct ProviderUpdate {
  std::optional<std::string> name, kind, api_key, base_url;
  std::optional<bool> is_active;
};
struct ModelCreate {
  std::string name, provider_id;
  std::optional<std::string> provider_model_name;
};
struct KeyCreate {
  std::string name;
};

Result<ProviderCreate> parse_provider_create(std::string_view body);
Result<ProviderUpdate> parse_provider_update(std::string_view body);
Result<ModelCreate> parse_model_create(std::string_view body);
Result<ModelPatch> parse_model_update(std::string_view body);
Result<KeyCreate> parse_key_create(std::string_view body);
Result<UserKeyPatch> parse_key_update(std::string_view body);

// http(s)://host[:port][/path], no query/fragment/userinfo; returns it without trailing '/'.
Result<std::string> normalize_base_url(std::string_view url, std::string_view param = "base_url");

std::string to_json(const Provider& p);
std::string to_json(const Model& m);
std::string to_json(const UserKey& k);
// The one response that contains a plaintext user key: creation and rotation.
std::string to_json_with_secret(const UserKey& k, std::string_view plaintext_key);
std::string providers_json(const std::vector<Provider>& v);
std::string models_json(const std::vector<Model>& v);
std::string keys_json(const std::vector<UserKey>& v);

}  // namespace core
