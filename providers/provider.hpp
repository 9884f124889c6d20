#pragma once
// What differs between provider kinds: the default base URL, how credentials are sent, which APIs
// they speak natively. Plain OpenAI-compatible kinds are rows of one table (registry.cpp); a kind
// with a real quirk has a file of its own (anthropic.cpp, azure.cpp).
#include "core/http1_write.hpp"

#include <span>
#include <string_view>

namespace providers {

// The wire format of a request: OpenAI's (/v1/chat/completions, /v1/responses, ...) or
// Anthropic's Messages API (/v1/messages).
enum class Api : unsigned char { openai, anthropic };

struct ProviderKind {
  std::string_view name;
  std::string_view default_base_url;  // empty: base_url is required
  bool anthropic_native = false;      // serves /v1/messages
  // Credentials (and any quirk headers) on an outgoing request of `api`. No key, no header.
  void (*apply_auth)(core::http1::HeadWriter& headers, std::string_view api_key, Api api) = nullptr;
};

// nullptr for unknown kinds.
const ProviderKind* find_kind(std::string_view name) noexcept;
std::span<const ProviderKind* const> all_kinds() noexcept;

// "Authorization: Bearer <key>": what every OpenAI-compatible API expects.
void apply_bearer(core::http1::HeadWriter& headers, std::string_view api_key, Api api);

}  // namespace providers
