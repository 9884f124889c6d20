#include "providers/provider.hpp"

namespace providers {
namespace {
// OpenRouter attributes traffic by these optional headers; naming the gateway is harmless.
void apply(boost::beast::http::fields& h, std::string_view key) {
  apply_bearer(h, key);
  h.set("X-Title", "llm-gateway");
}
}  // namespace

extern const ProviderKind kOpenRouter{"openrouter", "https://openrouter.ai/api/v1", &apply};
}  // namespace providers
