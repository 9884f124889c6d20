#include "core/admin_json.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using core::errc;

TEST_CASE("admin json: provider create") {
  auto r = core::parse_provider_create(
      R"({"name":"oa","kind":"openai","api_key":"sk-x","base_url":"http://127.0.0.1:9/v1/"})");
  REQUIRE(r);
  CHECK(r->name == "oa");
  CHECK(r->base_url == "http://127.0.0.1:9/v1");
  CHECK(r->api_key == "sk-x");

  auto missing = core::parse_provider_create(R"({"kind":"openai"})");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::invalid_request);
  CHECK(missing.error().param == "name");

  auto wrong_type = core::parse_provider_create(R"({"name":1,"kind":"openai"})");
  REQUIRE_FALSE(wrong_type);
  CHECK(wrong_type.error().param == "name");

  CHECK(core::parse_provider_create("{nope").error().code == errc::invalid_json);
  CHECK(core::parse_provider_create("[]").error().code == errc::invalid_request);
  CHECK(core::parse_provider_create(R"({"name":"a","kind":"openai","extra":1})").error().param == "extra");
  CHECK(core::parse_provider_create(R"({"name":"a","kind":"openai","base_url":"ftp://x"})").error().param ==
        "base_url");
}

TEST_CASE("admin json: base url validation") {
  CHECK(core::normalize_base_url("https://api.openai.com/v1").has_value());
  CHECK_FALSE(core::normalize_base_url("api.openai.com/v1"));
  CHECK_FALSE(core::normalize_base_url("https://user:pw@host/v1"));
  CHECK_FALSE(core::normalize_base_url("https://host/v1?x=1"));
  CHECK_FALSE(core::normalize_base_url("https:///v1"));
}

TEST_CASE("admin json: model update allows null provider_model_name") {
  auto r = core::parse_model_update(R"({"provider_model_name":null,"is_active":false})");
  REQUIRE(r);
  REQUIRE(r->provider_model_name.has_value());
  CHECK_FALSE(r->provider_model_name->has_value());
  CHECK(r->is_active == false);
  CHECK(core::parse_model_update(R"({"is_active":"no"})").error().param == "is_active");
  CHECK(core::parse_model_create(R"({"name":"m","provider_id":"nope"})").error().param == "provider_id");
}

TEST_CASE("admin json: rendering never includes secrets") {
  core::Provider p;
  p.id = "id";
  p.name = "n";
  p.api_key_enc = "CIPHERTEXT";
  p.api_key_preview = "sk-p...wxyz";
  auto text = core::to_json(p);
  CHECK(text.find("CIPHERTEXT") == std::string::npos);
  auto v = boost::json::parse(text);
  CHECK(v.at("api_key_preview") == "sk-p...wxyz");

  core::UserKey k;
  k.id = "kid";
  CHECK(boost::json::parse(core::to_json(k)).as_object().contains("key") == false);
  CHECK(boost::json::parse(core::to_json_with_secret(k, "sk-1")).at("key") == "sk-1");
}

#include "core/cache_codec.hpp"

TEST_CASE("route codec: round trip and rejection of garbage") {
  core::Route r{"mid", "gpt-4o", "pid", "openai", "https://api.openai.com/v1", "gpt-4o-2024"};
  auto back = core::decode_route(core::encode_route(r));
  REQUIRE(back);
  CHECK(back->upstream_model == "gpt-4o-2024");
  CHECK(back->base_url == r.base_url);
  CHECK_FALSE(core::decode_route("{}"));
  CHECK_FALSE(core::decode_route("nope"));
}
