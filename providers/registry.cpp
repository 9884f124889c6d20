#include "providers/provider.hpp"

#include <array>
#include <string>

namespace providers {

// Defined in one file per kind.
extern const ProviderKind kOpenAI;
extern const ProviderKind kOpenRouter;
extern const ProviderKind kDashScope;
extern const ProviderKind kArk;

namespace {
const std::array<const ProviderKind*, 4> kKinds{&kOpenAI, &kOpenRouter, &kDashScope, &kArk};
}  // namespace

const ProviderKind* find_kind(std::string_view name) noexcept {
  for (const auto* k : kKinds)
    if (k->name == name) return k;
  return nullptr;
}

std::span<const ProviderKind* const> all_kinds() noexcept {
  return kKinds;
}

void apply_bearer(core::http1::HeadWriter& headers, std::string_view api_key) {
  if (api_key.empty()) return;
  headers.field_prefixed("Authorization", "Bearer ", api_key);
}

}  // namespace providers
