#include "providers/provider.hpp"

namespace providers {
namespace {
// OpenRouter attributes traffic by these optional headers; naming the gateway is harmless.
void apply(core::http1::HeadWriter& h, std::string_view key) {
  apply_bearer(h, key);
  h.field("X-Title", "llm-gateway");
}
}  // namespace

extern const ProviderKind kOpenRouter{"openrouter", "https://openrouter.ai/api/v1", &apply};
}  // namespace providers
