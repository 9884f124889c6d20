#pragma once
// Value types shared by storage, cache and the gateway. Plain data, no behaviour.
#include <optional>
#include <string>

namespace core {

struct Provider {
  std::string id;  // uuid
  std::string name;
  std::string kind;             // openai | openrouter | dashscope | ark
  std::string base_url;         // no trailing slash
  std::string api_key_enc;      // base64(nonce || ciphertext || tag); empty when no key
  std::string api_key_preview;  // e.g. "sk-p...wxyz"; empty when no key
  bool is_active = true;
  std::string created_at;  // RFC 3339 UTC
  std::string updated_at;
};

struct NewProvider {
  std::string name, kind, base_url, api_key_enc, api_key_preview;
};

struct ProviderPatch {
  std::optional<std::string> name, kind, base_url;
  std::optional<std::string> api_key_enc, api_key_preview;  // both set together
  std::optional<bool> is_active;
};

struct Model {
  std::string id;
  std::string name;  // public name clients send as "model"
  std::string provider_id;
  std::optional<std::string> provider_model_name;  // null -> same as name
  bool is_active = true;
  std::string created_at;
  std::string updated_at;
};

struct NewModel {
  std::string name, provider_id;
  std::optional<std::string> provider_model_name;
};

struct ModelPatch {
  std::optional<std::string> name, provider_id;
  std::optional<std::optional<std::string>> provider_model_name;  // set to null allowed
  std::optional<bool> is_active;
};

struct UserKey {
  std::string id;
  std::string name;
  std::string key_prefix;  // first chars of the key, for humans to recognise it
  bool is_active = true;
  std::string created_at;
  std::string updated_at;
  std::optional<std::string> last_used_at;
};

struct UserKeyPatch {
  std::optional<std::string> name;
  std::optional<bool> is_active;
};

// What the hot path needs to forward one request for a public model name. No plaintext secret.
struct Route {
  std::string model_id;
  std::string model_name;
  std::string provider_id;
  std::string provider_kind;
  std::string base_url;
  std::string upstream_model;  // provider_model_name or the public name
};

// A user key found by its hash (auth fallback to PostgreSQL).
struct KeyIdentity {
  std::string id;
  std::string name;
};

// What authentication yields and the hot path carries: immutable, shared, cached per worker and
// in Redis (as JSON, by key hash). No secret: the key itself is never stored.
struct KeyRecord {
  std::string id;
  std::string name;
};

}  // namespace core
