#include "gateway/server.hpp"

#include "core/ascii.hpp"
#include "core/keys.hpp"
#include "core/log.hpp"
#include "gateway/responses.hpp"
#include "gateway/router.hpp"
#include "gateway/upstream_pool.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <array>

namespace gw {
namespace {

using core::errc;

bool usable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':'))
      return false;
  return true;
}

// After answering a request whose body we will not read (413), stop sending, swallow what the
// client is still sending for a moment so it reads our answer instead of a reset, then close.
net::awaitable<void> lingering_close(beast::tcp_stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(2));
  std::array<char, 16384> sink;
  for (;;) {
    auto [rec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
    if (rec) break;
  }
  stream.socket().close(ec);
}

void log_request(const Exchange& ex, Clock::time_point start, std::string_view remote) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  const std::string_view target = ex.req.target();
  boost::json::object f{{"method", ex.req.method_string()},
                        {"path", target.substr(0, target.find('?'))},
                        {"status", ex.status},
                        {"duration_ms", static_cast<double>(us) / 1000.0},
                        {"request_id", ex.request_id},
                        {"remote", remote}};
  if (!ex.model.empty()) f["model"] = ex.model;
  core::log::info("request", std::move(f));
}

// Answers a request that never reached a handler (malformed, too large) and closes.
net::awaitable<void> reject(App& app, beast::tcp_stream& stream, core::Error err, bool linger) {
  Request dummy{http::verb::unknown, "/", 11};
  Response res = error_response(dummy, err);
  res.keep_alive(false);
  res.set("X-Request-Id", core::generate_request_id());
  stream.expires_after(to_steady(app.cfg.body_timeout));
  co_await http::async_write(stream, res, use_tuple);
  if (linger) co_await lingering_close(stream);
}

net::awaitable<void> session(App& app, tcp::socket socket) {
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  const auto remote_ep = socket.remote_endpoint(ec);
  const std::string remote = ec ? std::string() : remote_ep.address().to_string();
  beast::tcp_stream stream(std::move(socket));
  SessionEntry entry{&stream, true};
  app.sessions.push_front(&entry);
  const auto registration = app.sessions.begin();
  struct Unregister {
    App& app;
    std::list<SessionEntry*>::iterator it;
    ~Unregister() { app.sessions.erase(it); }
  } unregister{app, registration};

  beast::flat_buffer buffer;
  buffer.reserve(16 * 1024);  // an empty flat_buffer reads 512 bytes at a time
  bool first = true;
  while (!app.draining) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(app.cfg.max_header_bytes));
    parser.body_limit(app.cfg.max_body_bytes);

    entry.idle = true;
    stream.expires_after(
        to_steady(first || buffer.size() > 0 ? app.cfg.header_timeout : app.cfg.keepalive_timeout));
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    entry.idle = false;
    const auto start = Clock::now();
    first = false;
    if (hec == http::error::header_limit) {
      core::Error err{errc::header_too_large};
      co_await reject(app, stream, std::move(err), false);
      break;
    }
    if (hec == http::error::body_limit) {
      core::Error err{errc::body_too_large};
      co_await reject(app, stream, std::move(err), true);
      break;
    }
    if (hec) {
      // Timeouts, resets and clean closes end the connection quietly; garbage gets a 400.
      if (hec != http::error::end_of_stream && hec != beast::error::timeout && hec != net::error::eof &&
          hec != net::error::operation_aborted && hec != net::error::connection_reset &&
          hec != net::error::bad_descriptor) {
        core::Error err{errc::invalid_request, "Malformed HTTP request."};
        co_await reject(app, stream, std::move(err), false);
      }
      break;
    }

    if (core::iequals(parser.get()[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream.expires_after(to_steady(app.cfg.body_timeout));
      co_await net::async_write(stream, net::buffer(kContinue.data(), kContinue.size()), use_tuple);
    }
    if (!parser.is_done()) {
      stream.expires_after(to_steady(app.cfg.body_timeout));
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (bec == http::error::body_limit) {
        core::Error err{errc::body_too_large};
        co_await reject(app, stream, std::move(err), true);
        break;
      }
      if (bec == beast::error::timeout) {
        core::Error err{errc::request_timeout};
        co_await reject(app, stream, std::move(err), false);
        break;
      }
      if (bec) break;
    }
    stream.expires_never();

    Request req = parser.release();
    Exchange ex{req, stream, entry};
    const auto client_id = req["X-Request-Id"];
    ex.client_sent_request_id = usable_request_id(client_id);
    ex.request_id = ex.client_sent_request_id ? std::string(client_id) : core::generate_request_id();
    ex.keep_alive = req.keep_alive();

    Response res = co_await dispatch(app, ex);
    if (!ex.responded) {
      ex.keep_alive = ex.keep_alive && !app.draining;
      res.keep_alive(ex.keep_alive);
      res.set("X-Request-Id", ex.request_id);
      if (req.method() == http::verb::head) res.body().clear();  // keeps Content-Length
      ex.status = res.result_int();
      stream.expires_after(to_steady(app.cfg.body_timeout));
      auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
      if (wec) ex.keep_alive = false;
    }
    log_request(ex, start, remote);
    if (!ex.keep_alive) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

}  // namespace

net::awaitable<void> accept_loop(App& app, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (!acceptor.is_open()) co_return;  // shutdown
      // EMFILE and friends: back off briefly instead of spinning.
      net::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(use_tuple);
      continue;
    }
    net::co_spawn(acceptor.get_executor(), session(app, std::move(socket)), net::detached);
  }
}

void force_close(App& app) {
  for (SessionEntry* s : app.sessions) {
    beast::error_code ec;
    s->stream->socket().close(ec);
    if (s->upstream) s->upstream->socket().close(ec);
  }
}

void begin_drain(App& app) {
  app.draining = true;
  for (SessionEntry* s : app.sessions) {
    beast::error_code ec;
    if (s->idle) s->stream->socket().shutdown(tcp::socket::shutdown_both, ec), s->stream->cancel();
  }
}

}  // namespace gw
