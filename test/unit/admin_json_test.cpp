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
      {"r1", "pid", "main", "openai", "https://api.openai.com/v1", "gpt-4o-2024", "", 0, 3, {2.5, 10.0, {}}, {}});
  m.routes.push_back({"r2",
                      "pid2",
                      "az",
                      "azure",
                      "https://x.openai.azure.com/openai/deployments/{model}",
                      "gpt4o",
                      "2024-10-21",
                      1,
                      1,
                      {},
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
  core::KeyRecord k{"kid", "app", {{"gpt-4o", "claude-*"}, std::string("gpt-4o")}, {}};
  auto back = core::decode_key_record(core::encode_key_record(k));
  REQUIRE(back);
  CHECK(back->access.allowed_models == std::vector<std::string>{"gpt-4o", "claude-*"});
  CHECK(back->access.default_model == "gpt-4o");
  auto plain = core::decode_key_record(R"({"id":"a","name":"b"})");
  REQUIRE(plain);
  CHECK(plain->access.allowed_models.empty());
  CHECK_FALSE(plain->access.default_model);
}

// ---- limits and budgets ----

TEST_CASE("admin json: key limits on create (values, null, absent, invalid)") {
  auto full = core::parse_key_create(
      R"({"name":"k","rpm":60,"rpd":1000,"tpm":90000,"token_budget":1000000000000,"budget_usd":12.5,)"
      R"("max_parallel":4})");
  REQUIRE(full);
  CHECK(full->limits.rpm == 60);
  CHECK(full->limits.rpd == 1000);
  CHECK(full->limits.tpm == 90000);
  CHECK(full->limits.token_budget == core::kMaxLimit);
  CHECK(full->limits.budget_usd == 12.5);
  CHECK(full->limits.max_parallel == 4);

  auto none = core::parse_key_create(R"({"name":"k","rpm":null,"budget_usd":null})");
  REQUIRE(none);
  CHECK_FALSE(none->limits.any());
  auto zero_budget = core::parse_key_create(R"({"name":"k","budget_usd":0})");
  REQUIRE(zero_budget);
  CHECK(zero_budget->limits.budget_usd == 0.0);  // allowed: nothing may be spent
  auto integral_usd = core::parse_key_create(R"({"name":"k","budget_usd":1000000000})");
  REQUIRE(integral_usd);
  CHECK(integral_usd->limits.budget_usd == core::kMaxBudgetUsd);

  const std::pair<const char*, const char*> bad[] = {
      {R"({"name":"k","rpm":0})", "rpm"},
      {R"({"name":"k","rpd":-1})", "rpd"},
      {R"({"name":"k","tpm":1000000000001})", "tpm"},
      {R"({"name":"k","token_budget":1.5})", "token_budget"},
      {R"({"name":"k","max_parallel":"4"})", "max_parallel"},
      {R"({"name":"k","rpm":true})", "rpm"},
      {R"({"name":"k","rpm":18446744073709551615})", "rpm"},
      {R"({"name":"k","rpm":10e0})", "rpm"},
      {R"({"name":"k","budget_usd":-0.01})", "budget_usd"},
      {R"({"name":"k","budget_usd":1000000000.5})", "budget_usd"},
      {R"({"name":"k","budget_usd":"5"})", "budget_usd"},
      {R"({"name":"k","budget_usd":{}})", "budget_usd"},
      {R"({"name":"k","reset_usage":true})", "reset_usage"},  // update only
      {R"({"name":"k","rpn":1})", "rpn"},
  };
  for (const auto& [body, param] : bad) {
    INFO(body);
    auto r = core::parse_key_create(body);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_request);
    CHECK(r.error().param == param);
  }
}

TEST_CASE("admin json: key limits on update are a per-field patch; reset_usage") {
  auto p = core::parse_key_update(R"({"rpm":10,"tpm":null,"budget_usd":2})");
  REQUIRE(p);
  REQUIRE(p->limits.rpm.has_value());
  CHECK(*p->limits.rpm == 10);
  REQUIRE(p->limits.tpm.has_value());
  CHECK_FALSE(p->limits.tpm->has_value());  // null: remove the limit
  REQUIRE(p->limits.budget_usd.has_value());
  CHECK(*p->limits.budget_usd == 2.0);
  CHECK_FALSE(p->limits.rpd.has_value());  // absent: keep
  CHECK_FALSE(p->limits.token_budget.has_value());
  CHECK_FALSE(p->limits.max_parallel.has_value());
  CHECK_FALSE(p->reset_usage);

  auto reset = core::parse_key_update(R"({"reset_usage":true,"budget_usd":null})");
  REQUIRE(reset);
  CHECK(reset->reset_usage);
  REQUIRE(reset->limits.budget_usd.has_value());
  CHECK_FALSE(reset->limits.budget_usd->has_value());
  auto no_reset = core::parse_key_update(R"({"reset_usage":false})");
  REQUIRE(no_reset);
  CHECK_FALSE(no_reset->reset_usage);
  for (const char* bad : {R"({"reset_usage":1})", R"({"reset_usage":null})", R"({"reset_usage":"true"})"}) {
    auto r = core::parse_key_update(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().param == "reset_usage");
  }
  CHECK(core::parse_key_update(R"({"max_parallel":0})").error().param == "max_parallel");
  CHECK(core::parse_key_update(R"({"budget_usd":1e400})").error().param == "budget_usd");  // inf
}

TEST_CASE("admin json: provider rpm / rpd on create and update") {
  auto created = core::parse_provider_create(R"({"name":"p","kind":"openai","rpm":500,"rpd":null})");
  REQUIRE(created);
  CHECK(created->limits.rpm == 500);
  CHECK_FALSE(created->limits.rpd.has_value());
  CHECK(core::parse_provider_create(R"({"name":"p","kind":"openai","rpd":0})").error().param == "rpd");
  CHECK(core::parse_provider_create(R"({"name":"p","kind":"openai","tpm":5})").error().param == "tpm");

  auto updated = core::parse_provider_update(R"({"rpm":null,"rpd":7})");
  REQUIRE(updated);
  REQUIRE(updated->rpm.has_value());
  CHECK_FALSE(updated->rpm->has_value());
  REQUIRE(updated->rpd.has_value());
  CHECK(*updated->rpd == 7);
  auto untouched = core::parse_provider_update(R"({"name":"q"})");
  REQUIRE(untouched);
  CHECK_FALSE(untouched->rpm.has_value());
  CHECK_FALSE(untouched->rpd.has_value());
  CHECK(core::parse_provider_update(R"({"rpm":-3})").error().param == "rpm");
}

TEST_CASE("admin json: limits rendering (null when unlimited)") {
  core::UserKey k;
  k.id = "kid";
  auto none = boost::json::parse(core::to_json(k));
  for (const char* field : {"rpm", "rpd", "tpm", "token_budget", "budget_usd", "max_parallel"}) {
    INFO(field);
    REQUIRE(none.as_object().contains(field));
    CHECK(none.at(field).is_null());
  }
  k.limits.rpm = 60;
  k.limits.token_budget = core::kMaxLimit;
  k.limits.budget_usd = 0.1;
  k.limits.max_parallel = 2;
  auto v = boost::json::parse(core::keys_json({k})).at(0);
  CHECK(v.at("rpm").as_int64() == 60);
  CHECK(v.at("rpd").is_null());
  CHECK(v.at("tpm").is_null());
  CHECK(v.at("token_budget").as_int64() == core::kMaxLimit);
  CHECK(v.at("budget_usd").as_double() == 0.1);
  CHECK(v.at("max_parallel").as_int64() == 2);

  core::Provider p;
  p.id = "pid";
  auto unlimited = boost::json::parse(core::to_json(p));
  CHECK(unlimited.at("rpm").is_null());
  CHECK(unlimited.at("rpd").is_null());
  p.limits.rpd = 10000;
  auto limited = boost::json::parse(core::providers_json({p})).at(0);
  CHECK(limited.at("rpm").is_null());
  CHECK(limited.at("rpd").as_int64() == 10000);
}

TEST_CASE("cache codec: key limits round trip; records without them are unlimited") {
  core::KeyRecord k{"kid", "app", {}, {}};
  k.limits.rpm = 60;
  k.limits.tpm = core::kMaxLimit;
  k.limits.budget_usd = 0.1;
  k.limits.max_parallel = 3;
  const auto text = core::encode_key_record(k);
  CHECK(text.find("\"rpd\"") == std::string::npos);  // unlimited: absent
  auto back = core::decode_key_record(text);
  REQUIRE(back);
  CHECK(back->limits.rpm == 60);
  CHECK_FALSE(back->limits.rpd);
  CHECK(back->limits.tpm == core::kMaxLimit);
  CHECK_FALSE(back->limits.token_budget);
  CHECK(back->limits.budget_usd == 0.1);
  CHECK(back->limits.max_parallel == 3);

  auto zero = k;
  zero.limits = {};
  zero.limits.budget_usd = 0.0;
  auto zero_back = core::decode_key_record(core::encode_key_record(zero));
  REQUIRE(zero_back);
  CHECK(zero_back->limits.budget_usd == 0.0);
  CHECK_FALSE(zero_back->limits.rpm);

  auto old = core::decode_key_record(R"({"id":"a","name":"b","allowed_models":[]})");
  REQUIRE(old);
  CHECK_FALSE(old->limits.any());
  CHECK_FALSE(core::decode_key_record(R"({"id":"a","name":"b","rpm":"60"})"));
  CHECK_FALSE(core::decode_key_record(R"({"id":"a","name":"b","budget_usd":null})"));
}

TEST_CASE("cache codec: route targets carry their provider's limits") {
  core::ModelRoutes m{"mid", "gpt-4o", core::Strategy::priority, {}};
  core::RouteTarget limited;
  limited.route_id = "r1";
  limited.provider_limits.rpm = 500;
  limited.provider_limits.rpd = 100000;
  core::RouteTarget half;
  half.route_id = "r2";
  half.provider_limits.rpd = 7;
  core::RouteTarget open;
  open.route_id = "r3";
  m.routes = {limited, half, open};
  auto back = core::decode_routes(core::encode_routes(m));
  REQUIRE(back);
  REQUIRE(back->routes.size() == 3);
  CHECK(back->routes[0].provider_limits.rpm == 500);
  CHECK(back->routes[0].provider_limits.rpd == 100000);
  CHECK_FALSE(back->routes[1].provider_limits.rpm);
  CHECK(back->routes[1].provider_limits.rpd == 7);
  CHECK_FALSE(back->routes[2].provider_limits.any());

  core::ResponseHome home{"kid", limited};
  auto home_back = core::decode_response_home(core::encode_response_home(home));
  REQUIRE(home_back);
  CHECK(home_back->route.provider_limits.rpm == 500);

  // Written before limits existed: no limits.
  auto old = core::decode_routes(
      R"({"model_id":"m","model":"x","strategy":"priority","routes":[{"route_id":"r","provider_id":"p",)"
      R"("provider":"n","kind":"openai","base_url":"https://a","upstream_model":"x","api_version":"",)"
      R"("priority":0,"weight":1}]})");
  REQUIRE(old);
  CHECK_FALSE(old->routes[0].provider_limits.any());
  CHECK_FALSE(core::decode_routes(
      R"({"model_id":"m","model":"x","strategy":"priority","routes":[{"route_id":"r","provider_id":"p",)"
      R"("provider":"n","kind":"openai","base_url":"https://a","upstream_model":"x","api_version":"",)"
      R"("priority":0,"weight":1,"provider_rpm":1.5}]})"));
}
