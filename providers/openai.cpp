#include "providers/provider.hpp"

namespace providers {
extern const ProviderKind kOpenAI{"openai", "https://api.openai.com/v1", &apply_bearer};
}  // namespace providers
