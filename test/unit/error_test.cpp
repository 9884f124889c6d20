#include "core/http_error.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

TEST_CASE("errors: mapping to HTTP status") {
  using core::errc;
  CHECK(core::to_http(errc::invalid_json).status == 400);
  CHECK(core::to_http(errc::not_found).status == 404);
  CHECK(core::to_http(errc::method_not_allowed).status == 405);
  CHECK(core::to_http(errc::body_too_large).status == 413);
  CHECK(core::to_http(errc::header_too_large).status == 431);
  CHECK(core::to_http(errc::missing_api_key).status == 401);
  CHECK(core::to_http(errc::invalid_api_key).status == 401);
  CHECK(core::to_http(errc::model_not_found).status == 404);
  CHECK(core::to_http(errc::conflict).status == 409);
  CHECK(core::to_http(errc::upstream_unavailable).status == 502);
  CHECK(core::to_http(errc::upstream_timeout).status == 504);
  CHECK(core::to_http(errc::db_unavailable).status == 503);
  CHECK(core::to_http(errc::internal).status == 500);
}

TEST_CASE("errors: OpenAI shape with null param by default") {
  auto v = boost::json::parse(core::render_openai_error({core::errc::invalid_api_key}));
  const auto& e = v.at("error").as_object();
  CHECK(e.size() == 4);
  CHECK(e.at("type") == "invalid_request_error");
  CHECK(e.at("code") == "invalid_api_key");
  CHECK(e.at("param").is_null());
  CHECK(e.at("message").as_string().size() > 0);
}

TEST_CASE("errors: custom message and param are kept") {
  auto v = boost::json::parse(core::render_openai_error(
      {core::errc::invalid_request, "You must provide a model parameter.", "model"}));
  CHECK(v.at("error").at("param") == "model");
  CHECK(v.at("error").at("message") == "You must provide a model parameter.");
  CHECK(v.at("error").at("code") == "invalid_request");
}

TEST_CASE("errors: errc converts to error_code") {
  boost::system::error_code ec = core::errc::upstream_timeout;
  CHECK(ec.category().name() == std::string("llm-gateway"));
  CHECK(ec.message() == "upstream_timeout");
}

TEST_CASE("errors: Anthropic shape and types") {
  auto v = boost::json::parse(core::render_anthropic_error({core::errc::invalid_api_key}));
  CHECK(v.at("type") == "error");
  CHECK(v.at("error").at("type") == "authentication_error");
  CHECK(v.at("error").at("message").as_string().size() > 0);
  CHECK(core::anthropic_error_type({core::errc::model_not_found}) == "not_found_error");
  CHECK(core::anthropic_error_type({core::errc::invalid_request}) == "invalid_request_error");
  CHECK(core::anthropic_error_type({core::errc::overloaded}) == "overloaded_error");
  CHECK(core::anthropic_error_type({core::errc::upstream_unavailable}) == "api_error");
}

TEST_CASE("errors: transient overload carries Retry-After") {
  CHECK(core::to_http(core::errc::overloaded).retry_after_seconds == 1);
  CHECK(core::to_http(core::errc::not_implemented).status == 501);
  CHECK(core::to_http(core::errc::version_not_supported).status == 505);
  CHECK(core::to_http(core::errc::invalid_request).retry_after_seconds == 0);
}

TEST_CASE("errors: limits are 429 with OpenAI's codes, rate_limit_error for Anthropic") {
  auto rate = boost::json::parse(core::render_openai_error({core::errc::rate_limit_exceeded}));
  CHECK(core::to_http(core::errc::rate_limit_exceeded).status == 429);
  CHECK(rate.at("error").at("code") == "rate_limit_exceeded");
  auto quota = boost::json::parse(core::render_openai_error({core::errc::insufficient_quota}));
  CHECK(core::to_http(core::errc::insufficient_quota).status == 429);
  CHECK(quota.at("error").at("code") == "insufficient_quota");
  CHECK(quota.at("error").at("type") == "insufficient_quota");
  CHECK(core::anthropic_error_type({core::errc::rate_limit_exceeded}) == "rate_limit_error");
  CHECK(core::anthropic_error_type({core::errc::insufficient_quota}) == "rate_limit_error");
}
