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

TEST_CASE("rewrite: an escaped key is found and only the value is spliced, numbers untouched") {
  const std::string body = R"({"mod\u0065l" : "a","temperature":0.7,"seed":12345678901234567890,"x":1.0e2})";
  auto r = core::inspect_inference_body(body);
  REQUIRE(r);
  CHECK(r->model == "a");
  CHECK(core::rewrite_model(body, *r, "b") ==
        R"({"mod\u0065l" : "b","temperature":0.7,"seed":12345678901234567890,"x":1.0e2})");
  const std::string body2 = R"({"\u006d\u006F\u0064\u0065\u006c":"a"})";
  r = core::inspect_inference_body(body2);
  REQUIRE(r);
  CHECK(core::rewrite_model(body2, *r, "b") == R"({"\u006d\u006F\u0064\u0065\u006c":"b"})");
  // A key that only looks similar is not the model.
  auto other = core::inspect_inference_body(R"({"model\u0000":"x","model":"y"})");
  REQUIRE(other);
  CHECK(other->model == "y");
}

TEST_CASE("rewrite: model names are bounded and free of control characters") {
  auto code = [](const std::string& b) {
    auto r = core::inspect_inference_body(b);
    return r ? errc::ok : r.error().code;
  };
  CHECK(code(R"({"model":"gpt\u0000x"})") == errc::invalid_request);
  CHECK(code(R"({"model":"gpt\nx"})") == errc::invalid_request);
  CHECK(code(R"({"model":"gpt\u007fx"})") == errc::invalid_request);
  CHECK(code(R"({"model":""})") == errc::invalid_request);
  CHECK(code("{\"model\":\"" + std::string(257, 'a') + "\"}") == errc::invalid_request);
  CHECK(code("{\"model\":\"" + std::string(256, 'a') + "\"}") == errc::ok);
  CHECK(code("{\"model\":\"" + std::string(2 << 20, 'a') + "\"}") == errc::invalid_request);
  CHECK(code(R"({"model":"modèle/日本"})") == errc::ok);

  CHECK(core::valid_model_name("gpt-4o"));
  CHECK_FALSE(core::valid_model_name(""));
  CHECK_FALSE(core::valid_model_name("\xff\xfe"));
  CHECK_FALSE(core::valid_model_name("a\x01"));
  CHECK_FALSE(core::valid_model_name(std::string(257, 'a')));
  CHECK(core::valid_utf8("\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80"));
  CHECK_FALSE(core::valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(core::valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(core::valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(core::valid_utf8("\xe6\x97"));          // truncated
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
  CHECK(code(R"({"messages":[]})") == errc::ok);  // no model: the handler decides (default model)
  CHECK(code(R"({"model":42})") == errc::invalid_request);
  CHECK(code(R"({"model":["a"]})") == errc::invalid_request);
  CHECK(code(R"({"model":"a","model":"b"})") == errc::invalid_request);
  auto r = core::inspect_inference_body(R"({"model":7})");
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

TEST_CASE("rewrite: a body without a model gets one inserted as its first member") {
  auto r = core::inspect_inference_body(R"( {"messages":[{"model":"inner"}],"n":1})");
  REQUIRE(r);
  CHECK_FALSE(r->has_model);
  CHECK(core::rewrite_model(R"( {"messages":[{"model":"inner"}],"n":1})", *r, "dflt") ==
        R"( {"model":"dflt","messages":[{"model":"inner"}],"n":1})");
  auto empty = core::inspect_inference_body("{ }");
  REQUIRE(empty);
  CHECK(core::rewrite_model("{ }", *empty, "d") == R"({"model":"d" })");
}
