#include "providers/provider.hpp"

namespace providers {
// Alibaba DashScope's OpenAI-compatible mode: plain Bearer auth, same paths.
extern const ProviderKind kDashScope{"dashscope", "https://dashscope.aliyuncs.com/compatible-mode/v1",
                                     &apply_bearer};
}  // namespace providers
