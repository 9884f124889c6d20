#include "providers/provider.hpp"

namespace providers {
// Volcengine Ark: OpenAI-compatible under /api/v3, Bearer auth.
extern const ProviderKind kArk{"ark", "https://ark.cn-beijing.volces.com/api/v3", &apply_bearer};
}  // namespace providers
