#pragma once
// Lookups every proxy handler needs: what a model name routes to, and a provider's credentials.
#include "gateway/app.hpp"

namespace gw {

// This worker's cache, then the Redis hash, then PostgreSQL. nullptr: no such (active, routable)
// model. Callers pass only names that passed core::valid_model_name.
net::awaitable<core::Result<ModelPtr>> find_model(App& app, const std::string& model);

// Decrypted API key and extra headers, kept in this worker's memory only.
net::awaitable<core::Result<SecretsPtr>> provider_secrets(App& app, const std::string& provider_id);

}  // namespace gw
