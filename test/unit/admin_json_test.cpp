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

TEST_CASE("cache codec: model routes round trip, garbage rejected") {
  core::ModelRoutes m{"mid", "gpt-4o", core::Strategy::round_robin, {}};
  m.routes.push_back({"r1", "pid", "main", "openai", "https://api.openai.com/v1", "gpt-4o-2024", "", 0, 3});
  m.routes.push_back({"r2", "pid2", "az", "azure", "https://x.openai.azure.com/openai/deployments/{model}",
                      "gpt4o", "2024-10-21", 1, 1});
  auto back = core::decode_routes(core::encode_routes(m));
  REQUIRE(back);
  CHECK(back->strategy == core::Strategy::round_robin);
  REQUIRE(back->routes.size() == 2);
  CHECK(back->routes[0].upstream_model == "gpt-4o-2024");
  CHECK(back->routes[0].weight == 3);
  CHECK(back->routes[1].api_version == "2024-10-21");
  CHECK(back->routes[1].provider_name == "az");
  CHECK_FALSE(core::decode_routes("{}"));
  CHECK_FALSE(core::decode_routes("nope"));
  CHECK_FALSE(core::decode_routes(R"({"model_id":"m","model":"x","strategy":"priority","routes":[]})"));
}

TEST_CASE("cache codec: key records with access") {
  core::KeyRecord k{"kid", "app", {{"gpt-4o", "claude-*"}, std::string("gpt-4o")}};
  auto back = core::decode_key_record(core::encode_key_record(k));
  REQUIRE(back);
  CHECK(back->access.allowed_models == std::vector<std::string>{"gpt-4o", "claude-*"});
  CHECK(back->access.default_model == "gpt-4o");
  auto plain = core::decode_key_record(R"({"id":"a","name":"b"})");
  REQUIRE(plain);
  CHECK(plain->access.allowed_models.empty());
  CHECK_FALSE(plain->access.default_model);
}
