#include "core/model_rewrite.hpp"

#include <catch2/catch.hpp>

using core::errc;

TEST_CASE("rewrite: splices only the model value, every other byte unchanged") {
  const std::string body =
      R"({ "messages":[{"role":"user","content":"model \"x\" \u00e9 ü"}],"model" : "gpt-4o",)"
      R"("temperature":0.70,"stream":true,"meta":{"model":"inner"}})";
  auto r = core::inspect_inference_body(body);
  REQUIRE(r);
  CHECK(r->model == "gpt-4o");
  CHECK(r->stream);
  auto out = core::rewrite_model(body, *r, "upstream/model-1");
  CHECK(out ==
        R"({ "messages":[{"role":"user","content":"model \"x\" \u00e9 ü"}],"model" : "upstream/model-1",)"
        R"("temperature":0.70,"stream":true,"meta":{"model":"inner"}})");
}

TEST_CASE("rewrite: upstream names are JSON-escaped") {
  const std::string body = R"({"model":"a"})";
  auto r = core::inspect_inference_body(body);
  REQUIRE(r);
  CHECK(core::rewrite_model(body, *r, "we\"ird\\") == R"({"model":"we\"ird\\"})");
}

TEST_CASE("rewrite: escaped key falls back to a DOM round trip") {
  const std::string body = R"({"mod\u0065l":"a","n":1})";
  auto r = core::inspect_inference_body(body);
  REQUIRE(r);
  CHECK(r->model == "a");
  CHECK(core::rewrite_model(body, *r, "b") == R"({"model":"b","n":1})");
}

TEST_CASE("rewrite: escaped model value is decoded") {
  auto r = core::inspect_inference_body(R"({"model":"gpt\u002d4"})");
  REQUIRE(r);
  CHECK(r->model == "gpt-4");
  CHECK_FALSE(r->stream);
}

TEST_CASE("rewrite: validation errors") {
  auto code = [](std::string_view b) {
    auto r = core::inspect_inference_body(b);
    return r ? errc::ok : r.error().code;
  };
  CHECK(code("") == errc::invalid_json);
  CHECK(code("{") == errc::invalid_json);
  CHECK(code(R"({"model":"a"} trailing)") == errc::invalid_json);
  CHECK(code("[1,2]") == errc::invalid_request);
  CHECK(code(R"("model")") == errc::invalid_request);
  CHECK(code(R"({"messages":[]})") == errc::invalid_request);
  CHECK(code(R"({"model":42})") == errc::invalid_request);
  CHECK(code(R"({"model":["a"]})") == errc::invalid_request);
  CHECK(code(R"({"model":"a","model":"b"})") == errc::invalid_request);
  auto r = core::inspect_inference_body(R"({"messages":[]})");
  CHECK(r.error().param == "model");
}

TEST_CASE("rewrite: nested model keys and arrays do not confuse the scanner") {
  const std::string body = R"({"a":[{"model":"x"},"model"],"b":{"c":{"model":"y"}},"model":"real"})";
  auto r = core::inspect_inference_body(body);
  REQUIRE(r);
  CHECK(r->model == "real");
  CHECK(core::rewrite_model(body, *r, "up") ==
        R"({"a":[{"model":"x"},"model"],"b":{"c":{"model":"y"}},"model":"up"})");
}
