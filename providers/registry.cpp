#include "providers/provider.hpp"

#include <array>

namespace providers {

// Defined in a file each: kinds with a quirk.
extern const ProviderKind kAnthropic;
extern const ProviderKind kAzure;

namespace {

// Plain OpenAI-compatible APIs: Bearer auth, the same paths under their base URL.
// OpenRouter's attribution headers (HTTP-Referer, X-Title) are a provider's extra_headers.
constexpr std::array<ProviderKind, 14> kPlain{{
    {"openrouter", "https://openrouter.ai/api/v1", false, &apply_bearer},
    {"openai", "https://api.openai.com/v1", false, &apply_bearer},
    {"gemini", "https://generativelanguage.googleapis.com/v1beta/openai", false, &apply_bearer},
    {"mistral", "https://api.mistral.ai/v1", false, &apply_bearer},
    {"groq", "https://api.groq.com/openai/v1", false, &apply_bearer},
    {"together", "https://api.together.xyz/v1", false, &apply_bearer},
    {"fireworks", "https://api.fireworks.ai/inference/v1", false, &apply_bearer},
    {"deepseek", "https://api.deepseek.com/v1", false, &apply_bearer},
    {"xai", "https://api.x.ai/v1", false, &apply_bearer},
    {"dashscope", "https://dashscope.aliyuncs.com/compatible-mode/v1", false, &apply_bearer},  // Alibaba
    {"ark", "https://ark.cn-beijing.volces.com/api/v3", false, &apply_bearer},                  // Volcengine
    {"ollama", "http://localhost:11434/v1", false, &apply_bearer},  // local: usually no key at all
    {"openai_compatible", "", false, &apply_bearer},                // anything else: base_url required
    {"vllm", "http://localhost:8000/v1", false, &apply_bearer},
}};

constexpr std::size_t kCount = kPlain.size() + 2;

std::array<const ProviderKind*, kCount> make_index() {
  std::array<const ProviderKind*, kCount> all{};
  std::size_t i = 0;
  for (const auto& k : kPlain) all[i++] = &k;
  all[i++] = &kAnthropic;
  all[i++] = &kAzure;
  return all;
}

const std::array<const ProviderKind*, kCount>& index() {
  static const auto all = make_index();
  return all;
}

}  // namespace

const ProviderKind* find_kind(std::string_view name) noexcept {
  for (const auto* k : index())
    if (k->name == name) return k;
  return nullptr;
}

std::span<const ProviderKind* const> all_kinds() noexcept {
  return index();
}

void apply_bearer(core::http1::HeadWriter& headers, std::string_view api_key, Api) {
  if (!api_key.empty()) headers.field_prefixed("Authorization", "Bearer ", api_key);
}

}  // namespace providers
