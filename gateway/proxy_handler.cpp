// /v1 in OpenAI's shape: chat/completions, completions, embeddings, responses (and the Responses
// API by id), models. The key was authenticated from the headers before the body was read
// (gateway/server.cpp); routing and failover are gateway/failover.cpp's.
#include "core/ascii.hpp"
#include "core/cache_codec.hpp"
#include "core/keys.hpp"
#include "core/log.hpp"
#include "core/model_rewrite.hpp"
#include "core/response_id.hpp"
#include "core/routing.hpp"
#include "gateway/failover.hpp"
#include "gateway/handlers.hpp"
#include "gateway/lookup.hpp"

#include <boost/json.hpp>

namespace gw {
namespace {

using core::errc;
using providers::Api;

core::Error model_not_found(std::string_view model) {
  return {errc::model_not_found,
          "The model `" + std::string(model) + "` does not exist or you do not have access to it.", "model"};
}

core::Error model_not_allowed(std::string_view model) {
  return {errc::model_not_allowed, "This key may not use the model `" + std::string(model) + "`.", "model"};
}

// Watches the answer that goes to the client: its usage (and, for an OpenAI stream whose client
// did not ask for usage, drops the usage chunk the gateway asked for), and the id of a Responses
// API object.
class AnswerObserver final : public RelayHooks {
 public:
  AnswerObserver(std::string_view path, bool drop_usage_chunk) : path_(path), drop_(drop_usage_chunk) {}
  bool on_head(const core::http1::ResponseHead& head) override {
    const bool sse = core::istarts_with(head.get("content-type"), "text/event-stream");
    usage_.emplace(core::usage_format(path_, sse), drop_ && sse);
    return true;
  }
  void on_data(std::string_view data) override {
    if (path_ == "/v1/responses") ids.feed(data);
  }
  core::UsageScanner* body_scanner() override { return usage_ ? &*usage_ : nullptr; }
  const core::UsageScanner* usage() const { return usage_ ? &*usage_ : nullptr; }
  core::FirstIdScanner ids;

 private:
  std::string_view path_;
  bool drop_;
  std::optional<core::UsageScanner> usage_;
};

// What the answer told about usage, into the exchange (for the log line, the request log, metrics).
void account(Exchange& ex, const AnswerObserver& answer) {
  const auto* scanner = answer.usage();
  if (!scanner) return;
  ex.usage = scanner->usage();
  if (!scanner->stream_error().empty() && ex.error.empty()) ex.error = scanner->stream_error();
  if (ex.served) ex.cost = core::cost_usd(ex.usage, ex.served->pricing);
}

net::awaitable<void> remember_response(App& app, std::string id, core::ResponseHome home) {
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(app.cfg.responses_ttl);
  if (auto s = co_await app.stores.put_response(std::move(id), core::encode_response_home(home), ttl); !s)
    core::log::warn("could not remember a response id", {{"error", core::to_string(s.error().code)}});
}

boost::json::object model_object(const core::ModelRoutes& m) {
  const auto& owner = m.routes.empty() ? std::string() : m.routes.front().provider_kind;
  return {{"id", m.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", owner}};
}

}  // namespace

// The model a request names (or the key's default), checked against the key's allowlist, resolved
// to its routes. On failure the response to send.
static net::awaitable<core::Result<ModelPtr>> resolve_model(App& app, Exchange& ex,
                                                            core::InferenceRequest& info) {
  if (!info.has_model) {
    if (!ex.key || !ex.key->access.default_model)
      co_return core::Error{errc::invalid_request, "You must provide a model parameter.", "model"};
    info.model = *ex.key->access.default_model;
  }
  ex.model = info.model;
  if (ex.key && !core::model_allowed(ex.key->access.allowed_models, info.model))
    co_return model_not_allowed(info.model);
  auto found = co_await find_model(app, info.model);
  if (!found) co_return found.error();
  if (!*found) co_return model_not_found(info.model);
  co_return std::move(*found);
}

net::awaitable<Response> v1_proxy(App& app, Exchange& ex) {
  auto info = core::inspect_inference_body(ex.req.body());
  if (!info) co_return ex.fail(info.error());
  auto model = co_await resolve_model(app, ex, *info);
  if (!model) co_return ex.fail(model.error());
  const ModelPtr entry = std::move(*model);  // keeps the routes alive across suspensions
  auto attempts = choose_attempts(app, *entry, Api::openai);
  if (attempts.empty()) co_return ex.fail({errc::upstream_unavailable, "No usable route for this model."});
  RequestLimits limits(app);
  if (auto refused = co_await limits.admit(ex, *entry, attempts, ex.req.body()))
    co_return std::move(*refused);

  const std::string_view path = ex.req.path();
  const bool responses_api = path == "/v1/responses";
  ex.set_stream(info->stream);
  // Usage is always captured: a stream whose client did not ask for it is made to ask, and the
  // usage chunk is dropped again on the way back.
  bool asked = true;
  std::optional<core::Splice> ask_usage;
  if (info->stream && (path == "/v1/chat/completions" || path == "/v1/completions"))
    ask_usage = core::ensure_stream_usage(ex.req.body(), asked);
  AnswerObserver answer(path, !asked);
  const ProxyCall call{.api = Api::openai,
                       .path_suffix = ex.req.target().substr(3),  // "/v1/chat/completions?x" -> "/chat/..."
                       .info = &*info,
                       .edit = ask_usage ? &*ask_usage : nullptr,
                       .body = ex.req.body(),
                       .observer = &answer,
                       .limits = &limits};
  Response res = co_await forward(app, ex, *entry, attempts, call);
  account(ex, answer);
  if (responses_api && ex.served && ex.status >= 200 && ex.status < 300 && answer.ids.found() && ex.key) {
    core::ResponseHome home{ex.key->id, *ex.served};
    net::co_spawn(app.ioc, remember_response(app, answer.ids.id(), std::move(home)), net::detached);
  }
  co_return res;
}

// GET / DELETE /v1/responses/{id}, POST .../cancel, GET .../input_items: to the provider that
// created the response, and only for the key that created it (others get 404, as for ids that
// never existed).
net::awaitable<Response> v1_response_by_id(App& app, Exchange& ex) {
  const std::string id(ex.params.get("id"));
  const core::Error not_found{errc::not_found, "No response found with id '" + id + "'.", "id"};
  if (!core::valid_request_id(id)) co_return ex.fail({errc::not_found, "No such response.", "id"});
  auto stored = co_await app.stores.response(id);
  if (!stored) co_return ex.fail({errc::cache_unavailable});
  if (!*stored) co_return ex.fail(not_found);
  auto home = core::decode_response_home(**stored);
  if (!home || !ex.key || home->key_id != ex.key->id) co_return ex.fail(not_found);
  core::ModelRoutes one{"", "", core::Strategy::priority, {home->route}};
  const ModelPtr entry = make_model_entry(std::move(one));
  if (!entry->targets[0].kind || !entry->targets[0].target) co_return ex.fail({errc::upstream_unavailable});
  const std::size_t only = 0;
  const std::span<const std::size_t> attempts(&only, 1);
  // No body: none of these calls has one (cancel takes none).
  const ProxyCall call{
      .api = Api::openai, .method = ex.req.method(), .path_suffix = ex.req.target().substr(3)};
  co_return co_await forward(app, ex, *entry, attempts, call);
}

net::awaitable<Response> v1_messages(App& app, Exchange& ex) {
  auto info = core::inspect_inference_body(ex.req.body());
  if (!info) co_return ex.fail(info.error());
  auto model = co_await resolve_model(app, ex, *info);
  if (!model) co_return ex.fail(model.error());
  const ModelPtr entry = std::move(*model);
  auto attempts = choose_attempts(app, *entry, Api::anthropic);
  if (attempts.empty())
    co_return ex.fail({errc::invalid_request,
                       "The model `" + info->model +
                           "` is not served by an Anthropic provider, so /v1/messages cannot reach it; use "
                           "/v1/chat/completions for it.",
                       "model"});
  RequestLimits limits(app);
  if (auto refused = co_await limits.admit(ex, *entry, attempts, ex.req.body()))
    co_return std::move(*refused);
  ex.set_stream(info->stream);
  AnswerObserver answer(ex.req.path(), false);
  const ProxyCall call{.api = Api::anthropic,
                       .path_suffix = ex.req.target().substr(3),  // "/messages", "/messages/count_tokens"
                       .info = &*info,
                       .body = ex.req.body(),
                       .observer = &answer,
                       .limits = &limits};
  Response res = co_await forward(app, ex, *entry, attempts, call);
  account(ex, answer);
  co_return res;
}

net::awaitable<Response> v1_list_models(App& app, Exchange& ex) {
  // An empty hash may be a Redis that lost its data: then PostgreSQL answers (cheap, and right
  // when there really are no models).
  auto routes = co_await app.stores.all_routes();
  if (!routes || routes->empty()) routes = co_await app.routes.all();
  if (!routes) co_return ex.fail(routes.error());
  boost::json::array data;
  for (const auto& m : *routes)
    if (!ex.key || core::model_allowed(ex.key->access.allowed_models, m.model_name))
      data.emplace_back(model_object(m));
  co_return json_response(
      200, boost::json::serialize(boost::json::object{{"object", "list"}, {"data", std::move(data)}}));
}

net::awaitable<Response> v1_get_model(App& app, Exchange& ex) {
  const std::string model(ex.params.get("model"));
  // Percent-decoded path bytes: anything that cannot be a model name (invalid UTF-8, control
  // characters, too long) is simply not found, and never reaches a cache or PostgreSQL. A model
  // the key may not use does not exist for it either.
  if (!core::valid_model_name(model)) co_return ex.fail(model_not_found("(invalid name)"));
  if (ex.key && !core::model_allowed(ex.key->access.allowed_models, model))
    co_return ex.fail(model_not_found(model));
  auto found = co_await find_model(app, model);
  if (!found) co_return ex.fail(found.error());
  if (!*found) co_return ex.fail(model_not_found(model));
  co_return json_response(200, boost::json::serialize(model_object((*found)->model)));
}

}  // namespace gw
