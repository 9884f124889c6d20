#include "providers/provider.hpp"

namespace providers {
namespace {
// Anthropic speaks both formats: its OpenAI-compatible endpoints (/v1/chat/completions) take a
// Bearer key; its native Messages API takes x-api-key (anthropic-version is the client's, set by
// the gateway when absent).
void apply(core::http1::HeadWriter& h, std::string_view key, Api api) {
  if (key.empty()) return;
  if (api == Api::anthropic)
    h.field("x-api-key", key);
  else
    h.field_prefixed("Authorization", "Bearer ", key);
}
}  // namespace

extern const ProviderKind kAnthropic{"anthropic", "https://api.anthropic.com/v1", true, &apply};
}  // namespace providers
