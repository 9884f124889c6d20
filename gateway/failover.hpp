#pragma once
// Sending one request to a model's routes in turn until one answers: the attempt loop behind every
// proxied endpoint. A route is abandoned for the next one on a connect / TLS error, a timeout
// before the response head, or a 429 / 5xx head, but only while nothing has reached the client.
// The last route's answer is the client's whatever it is; if no route answered at all, 502 / 504;
// if routes answered but were declined, the last such answer is replayed unchanged (a 429 stays a
// 429 with its Retry-After, a 529 stays a 529).
#include "core/model_rewrite.hpp"
#include "gateway/app.hpp"
#include "gateway/exchange.hpp"
#include "gateway/limits.hpp"
#include "gateway/relay.hpp"
#include "providers/provider.hpp"

#include <span>

namespace gw {

struct ProxyCall {
  providers::Api api = providers::Api::openai;
  std::string_view method = "POST";
  std::string_view path_suffix;                  // after the base URL's path, query included
  const core::InferenceRequest* info = nullptr;  // set: the body's model is rewritten per route
  const core::Splice* edit = nullptr;            // another body edit (stream_options), same pass
  std::string_view body;
  RelayHooks* observer = nullptr;  // sees the body of the answer that goes to the client
  // The request's admission (already admitted): later routes' providers are checked, usage is
  // counted when the answer is complete, our rate headers replace the provider's.
  RequestLimits* limits = nullptr;
};

net::awaitable<Response> forward(App& app, Exchange& ex, const ModelEntry& model,
                                 std::span<const std::size_t> attempts, const ProxyCall& call);

// The routes of `model` that can serve a request in `api` (a known kind with a usable base URL; for
// the Anthropic Messages API, an Anthropic-native kind), in the order core::plan_attempts chooses.
std::vector<std::size_t> choose_attempts(App& app, const ModelEntry& model, providers::Api api);

}  // namespace gw
