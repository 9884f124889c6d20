// The dispatch boundary (gateway/router.cpp invoke): an exception escaping a handler is logged and
// answered 500 in the API's shape, never with its text, and never after part of a response went out.
#include "core/log.hpp"
#include "gateway/router.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <stdexcept>

namespace {

using namespace gw;

std::vector<std::string> g_lines;
void capture(std::string_view line) {
  g_lines.emplace_back(line);
}

net::awaitable<Response> throws(App&, Exchange&) {
  throw std::runtime_error("secret detail from deep inside");
  co_return Response{};
}

net::awaitable<Response> throws_after_responding(App&, Exchange& ex) {
  ex.responded = true;
  throw std::logic_error("late failure");
  co_return Response{};
}

struct Fixture {
  Fixture() {
    cfg.admin_key = "0123456789abcdef";
    g_lines.clear();
    core::log::set_sink(&capture);
  }
  ~Fixture() { core::log::set_sink(nullptr); }

  Response call(Handler h, Flavor flavor) {
    Request req;
    REQUIRE(req.parse("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n\r\n", {}) ==
            core::http1::HeadError::none);
    tcp::socket socket(ioc);
    Deadline deadline(app.deadlines, socket);
    SessionEntry entry;
    ReadBuffer in(4096, 65536);
    Exchange ex(req, socket, in, deadline, entry);
    ex.request_id = "req-1";
    ex.flavor = flavor;
    const Endpoint endpoint{h, Access::open, flavor};
    Response res;
    bool done = false;
    net::co_spawn(ioc, invoke(app, ex, endpoint), [&](std::exception_ptr e, Response r) {
      REQUIRE_FALSE(e);  // nothing escapes the boundary
      res = std::move(r);
      done = true;
    });
    while (!done && ioc.run_one()) {
    }  // not run(): the deadline sweeper ticks while a deadline is registered
    REQUIRE(done);
    keep_alive = ex.keep_alive;
    return res;
  }

  core::Config cfg;
  storage::Db db{storage::DbOptions{.url = "postgresql://127.0.0.1:1/none", .threads = 1}};
  std::unique_ptr<net::ssl::context> tls = std::move(make_client_tls(cfg).value());
  net::io_context ioc;
  Shared shared{cfg, db, *tls, 10};
  App app{shared, ioc, std::make_shared<cache::RedisClient>(ioc.get_executor(), cache::RedisOptions{})};
  bool keep_alive = true;
};

}  // namespace

TEST_CASE("dispatch boundary: a throwing handler -> logged 500, OpenAI shape, no internals") {
  Fixture f;
  const Response res = f.call(&throws, Flavor::openai);
  CHECK(res.status == 500);
  const auto body = boost::json::parse(res.body);
  CHECK(body.at("error").at("code") == "internal_error");
  CHECK(body.at("error").at("type") == "api_error");
  CHECK(res.body.find("secret detail") == std::string::npos);
  REQUIRE(g_lines.size() == 1);
  const auto line = boost::json::parse(g_lines[0]);
  CHECK(line.at("level") == "error");
  CHECK(line.at("msg") == "handler failed");
  CHECK(line.at("request_id") == "req-1");
  CHECK(line.at("error") == "secret detail from deep inside");  // the log has it, the client not
}

TEST_CASE("dispatch boundary: Anthropic shape on the Messages API") {
  Fixture f;
  const Response res = f.call(&throws, Flavor::anthropic);
  CHECK(res.status == 500);
  const auto body = boost::json::parse(res.body);
  CHECK(body.at("type") == "error");
  CHECK(body.at("error").at("type") == "api_error");
}

TEST_CASE("dispatch boundary: after part of a response went out, the connection is cut instead") {
  Fixture f;
  const Response res = f.call(&throws_after_responding, Flavor::openai);
  CHECK_FALSE(f.keep_alive);
  CHECK(res.body.empty());
  CHECK(g_lines.size() == 1);
}
