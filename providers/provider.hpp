#pragma once
// What differs between provider kinds: default base URL, how credentials are sent, small quirks.
// One file per kind registers one ProviderKind; the gateway looks kinds up by name.
#include "core/http1_write.hpp"

#include <span>
#include <string_view>

namespace providers {

struct ProviderKind {
  std::string_view name;
  std::string_view default_base_url;
  // Sets the credential (and any quirk) headers on an outgoing upstream request.
  void (*apply_headers)(core::http1::HeadWriter& headers, std::string_view api_key);
};

// nullptr for unknown kinds.
const ProviderKind* find_kind(std::string_view name) noexcept;
std::span<const ProviderKind* const> all_kinds() noexcept;

// "Authorization: Bearer <key>" — what every OpenAI-compatible API expects. No header without a key.
void apply_bearer(core::http1::HeadWriter& headers, std::string_view api_key);

}  // namespace providers
