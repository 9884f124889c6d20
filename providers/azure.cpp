#include "providers/provider.hpp"

namespace providers {
namespace {
// Azure OpenAI: the key goes in an `api-key` header. The base URL names the resource, so there is
// no default: https://{resource}.openai.azure.com/openai/v1 (the v1 API), or the older per-deployment
// https://{resource}.openai.azure.com/openai/deployments/{model} with the provider's api_version
// (the gateway adds ?api-version= and puts the route's upstream model name in place of {model}).
void apply(core::http1::HeadWriter& h, std::string_view key, Api) {
  if (!key.empty()) h.field("api-key", key);
}
}  // namespace

extern const ProviderKind kAzure{"azure", "", false, &apply};
}  // namespace providers
