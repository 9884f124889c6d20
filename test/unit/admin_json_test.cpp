#include "core/admin_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
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

TEST_CASE("admin json: pricing on model update (set, partial, clear, invalid)") {
  auto full = core::parse_model_update(R"({"pricing":{"input":2.5,"output":10,"cached_input":1.25}})");
  REQUIRE(full);
  REQUIRE(full->pricing.has_value());
  CHECK(full->pricing->input == 2.5);
  CHECK(full->pricing->output == 10.0);
  CHECK(full->pricing->cached_input == 1.25);

  auto partial = core::parse_model_update(R"({"pricing":{"output":0,"input":null}})");
  REQUIRE(partial);
  REQUIRE(partial->pricing.has_value());
  CHECK_FALSE(partial->pricing->input.has_value());
  CHECK(partial->pricing->output == 0.0);
  CHECK_FALSE(partial->pricing->cached_input.has_value());

  for (const char* clear : {R"({"pricing":null})", R"({"pricing":{}})"}) {
    auto cleared = core::parse_model_update(clear);
    REQUIRE(cleared);
    REQUIRE(cleared->pricing.has_value());
    CHECK(cleared->pricing->empty());
  }

  auto absent = core::parse_model_update(R"({"name":"m"})");
  REQUIRE(absent);
  CHECK_FALSE(absent->pricing.has_value());  // left alone

  for (const char* bad : {R"({"pricing":{"input":-1}})", R"({"pricing":{"input":"2.5"}})",
                          R"({"pricing":{"output":true}})", R"({"pricing":{"input":1e300}})",
                          R"({"pricing":{"inptu":1}})", R"({"pricing":[1,2]})", R"({"pricing":5})"}) {
    auto r = core::parse_model_update(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_request);
    CHECK(r.error().param == "pricing");
  }
  CHECK(core::parse_model_update(R"({"pricing":{"inptu":1}})").error().message.find("inptu") !=
        std::string::npos);
}

TEST_CASE("admin json: pricing on model create and route create / update") {
  auto model = core::parse_model_create(
      R"({"name":"m","provider_id":"00000000-0000-4000-8000-000000000000","pricing":{"input":3}})");
  REQUIRE(model);
  CHECK(model->pricing.input == 3.0);
  CHECK_FALSE(model->pricing.output.has_value());
  auto no_price =
      core::parse_model_create(R"({"name":"m","provider_id":"00000000-0000-4000-8000-000000000000"})");
  REQUIRE(no_price);
  CHECK(no_price->pricing.empty());

  auto route = core::parse_route_create(
      R"({"provider_id":"00000000-0000-4000-8000-000000000000","pricing":{"output":12.5,"cached_input":0.5}})");
  REQUIRE(route);
  CHECK(route->pricing.output == 12.5);
  CHECK(route->pricing.cached_input == 0.5);
  CHECK_FALSE(route->pricing.input.has_value());
  CHECK(
      core::parse_route_create(R"({"provider_id":"00000000-0000-4000-8000-000000000000","pricing":{"x":1}})")
          .error()
          .param == "pricing");

  auto patch = core::parse_route_update(R"({"pricing":{"input":1}})");
  REQUIRE(patch);
  REQUIRE(patch->pricing.has_value());
  CHECK(patch->pricing->input == 1.0);
  auto clear = core::parse_route_update(R"({"pricing":null})");
  REQUIRE(clear);
  REQUIRE(clear->pricing.has_value());
  CHECK(clear->pricing->empty());
  auto untouched = core::parse_route_update(R"({"weight":2})");
  REQUIRE(untouched);
  CHECK_FALSE(untouched->pricing.has_value());
  CHECK(core::parse_route_update(R"({"pricing":{"output":-0.1}})").error().param == "pricing");
}

TEST_CASE("admin json: pricing rendering (null when unknown)") {
  core::Model m;
  m.id = "mid";
  auto none = boost::json::parse(core::to_json(m));
  CHECK(none.at("pricing").is_null());

  m.pricing.input = 2.5;
  core::ModelRoute r;
  r.id = "rid";
  r.pricing.output = 10;
  r.pricing.cached_input = 1.25;
  m.routes.push_back(r);
  auto v = boost::json::parse(core::to_json(m));
  CHECK(v.at("pricing").at("input").as_double() == 2.5);
  CHECK(v.at("pricing").at("output").is_null());
  CHECK(v.at("pricing").at("cached_input").is_null());
  const auto& route = v.at("routes").at(0);
  CHECK(route.at("pricing").at("input").is_null());
  CHECK(route.at("pricing").at("output").to_number<double>() == 10.0);
  CHECK(route.at("pricing").at("cached_input").as_double() == 1.25);

  auto listed = boost::json::parse(core::routes_json({r}));
  CHECK(listed.at(0).at("pricing").at("output").to_number<double>() == 10.0);

  // What GET renders can be sent back as is.
  auto round_trip =
      core::parse_model_update(std::string(R"({"pricing":)") + boost::json::serialize(v.at("pricing")) + "}");
  REQUIRE(round_trip);
  CHECK(round_trip->pricing->input == 2.5);
  CHECK_FALSE(round_trip->pricing->output.has_value());
}

#include "core/cache_codec.hpp"

TEST_CASE("cache codec: model routes round trip, garbage rejected") {
  core::ModelRoutes m{"mid", "gpt-4o", core::Strategy::round_robin, {}};
  m.routes.push_back(
      {"r1", "pid", "main", "openai", "https://api.openai.com/v1", "gpt-4o-2024", "", 0, 3, {2.5, 10.0, {}}});
  m.routes.push_back({"r2",
                      "pid2",
                      "az",
                      "azure",
                      "https://x.openai.azure.com/openai/deployments/{model}",
                      "gpt4o",
                      "2024-10-21",
                      1,
                      1,
                      {}});
  auto back = core::decode_routes(core::encode_routes(m));
  REQUIRE(back);
  CHECK(back->strategy == core::Strategy::round_robin);
  REQUIRE(back->routes.size() == 2);
  CHECK(back->routes[0].upstream_model == "gpt-4o-2024");
  CHECK(back->routes[0].weight == 3);
  CHECK(back->routes[1].api_version == "2024-10-21");
  CHECK(back->routes[1].provider_name == "az");
  CHECK(back->routes[0].pricing.input == 2.5);
  CHECK(back->routes[0].pricing.output == 10.0);
  CHECK_FALSE(back->routes[0].pricing.cached_input);
  CHECK(back->routes[1].pricing.empty());
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
