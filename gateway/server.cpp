#include "gateway/server.hpp"

#include "core/http1_body.hpp"
#include "core/keys.hpp"
#include "core/log.hpp"
#include "gateway/auth.hpp"
#include "gateway/read_buffer.hpp"
#include "gateway/router.hpp"
#include "gateway/write_now.hpp"

#include <boost/asio/write.hpp>

#include <array>
#include <optional>

namespace gw {
namespace {

using core::errc;
namespace h1 = core::http1;

constexpr std::size_t kInitialReadBuffer = 4096;
constexpr std::size_t kBodyReadStep = 64 * 1024;
// After answering before the body was read, at most this much of what follows is read and dropped
// (so the client reads our answer instead of a reset), then the connection is closed.
constexpr std::size_t kDiscardBytes = 1 << 20;
constexpr auto kDiscardTime = std::chrono::seconds(1);
constexpr h1::ChunkLimits kRequestChunks{.max_line = 4096, .max_trailers = 16 * 1024};
constexpr std::size_t kMaxLingeringRefusals = 64;

struct Client {
  Client(App& app, tcp::socket s)
      : socket(std::move(s)),
        deadline(app.deadlines, socket),
        in(kInitialReadBuffer, app.cfg.max_header_bytes) {}
  tcp::socket socket;
  Deadline deadline;
  ReadBuffer in;
  std::string out;  // rendered heads, reused
};

enum class HeadRead { complete, closed, idle_timeout, timeout, too_large };

// Waits for one whole request head in c.in. KEEPALIVE_TIMEOUT bounds the idle wait for its first
// byte, HEADER_TIMEOUT the rest from that byte on (a trickled head cannot hold the connection for
// the keep-alive period).
net::awaitable<std::pair<HeadRead, std::size_t>> read_head(App& app, Client& c, bool first) {
  bool started = !c.in.empty() || first;
  c.deadline.expires_after(to_steady(started ? app.cfg.header_timeout : app.cfg.keepalive_timeout));
  // An idle keep-alive connection keeps its small initial buffer (4 KiB; a larger one is freed) and
  // waits in a read, not in a readiness wait: Asio registers a wait with epoll_ctl every time,
  // while a read after an exhausted one is queued without any system call.
  if (c.in.empty()) c.in.shrink();
  std::size_t from = 0;
  for (;;) {
    const auto scan = h1::scan_head(c.in.data(), app.cfg.max_header_bytes, from);
    if (scan.state == h1::HeadScan::State::complete) co_return std::pair{HeadRead::complete, scan.size};
    if (scan.state == h1::HeadScan::State::too_large) co_return std::pair{HeadRead::too_large, 0};
    if (!started && !c.in.empty()) {
      started = true;
      c.deadline.expires_after(to_steady(app.cfg.header_timeout));
    }
    if (c.deadline.expired()) co_return std::pair{started ? HeadRead::timeout : HeadRead::idle_timeout, 0};
    auto [p, cap] = c.in.prepare();
    auto [ec, n] = co_await c.socket.async_read_some(net::buffer(p, cap), use_tuple);
    if (ec) {
      if (!c.deadline.fired()) co_return std::pair{HeadRead::closed, 0};
      co_return std::pair{started || !c.in.empty() ? HeadRead::timeout : HeadRead::idle_timeout, 0};
    }
    c.in.commit(n);
    if (!started) {
      started = true;
      c.deadline.expires_after(to_steady(app.cfg.header_timeout));
    }
  }
}

enum class BodyRead { complete, closed, timeout, too_large, malformed, over_budget };

BodyRead append_chunked(Request& req, h1::ChunkedDecoder& decoder, ReadBuffer& in, std::size_t max_body,
                        BodyBudget::Lease& lease) {
  std::size_t used = 0;
  while (used < in.size() && !decoder.done() && !decoder.failed()) {
    const auto step = decoder.decode(in.data().substr(used));
    used += step.consumed;
    if (req.body().size() + step.data.size() > max_body) return BodyRead::too_large;
    if (!lease.hold(req.body().size() + step.data.size())) return BodyRead::over_budget;
    req.body().append(step.data);
  }
  in.consume(used);
  if (decoder.failed()) return BodyRead::malformed;
  return BodyRead::complete;
}

// Reads the whole body into req.body() under BODY_TIMEOUT (from the end of the head), holding its
// size from the process-wide budget.
net::awaitable<BodyRead> read_body(App& app, Client& c, Request& req, BodyBudget::Lease& lease) {
  const auto& head = req.head();
  c.deadline.expires_after(to_steady(app.cfg.body_timeout));
  auto& body = req.body();
  if (head.framing == h1::Framing::length) {
    const auto want = static_cast<std::size_t>(head.content_length);
    if (!lease.hold(want)) co_return BodyRead::over_budget;  // declared: refused before it is read
    body.reserve(want);
    const std::size_t take = std::min(want, c.in.size());
    body.append(c.in.data().substr(0, take));
    c.in.consume(take);
    while (body.size() < want) {
      if (c.deadline.expired()) co_return BodyRead::timeout;
      // Straight into the body (no copy through the read buffer), never past its end: bytes of a
      // pipelined next request stay in the socket.
      const std::size_t old = body.size();
      body.resize(old + std::min(kBodyReadStep, want - old));
      auto [ec, n] =
          co_await c.socket.async_read_some(net::buffer(body.data() + old, body.size() - old), use_tuple);
      body.resize(old + n);
      if (ec) co_return c.deadline.fired() ? BodyRead::timeout : BodyRead::closed;
    }
    co_return BodyRead::complete;
  }
  h1::ChunkedDecoder decoder(kRequestChunks);
  for (;;) {
    if (auto r = append_chunked(req, decoder, c.in, app.cfg.max_body_bytes, lease); r != BodyRead::complete)
      co_return r;
    if (decoder.done()) co_return BodyRead::complete;
    if (c.deadline.expired()) co_return BodyRead::timeout;
    auto [p, cap] = c.in.prepare();
    auto [ec, n] = co_await c.socket.async_read_some(net::buffer(p, cap), use_tuple);
    if (ec) co_return c.deadline.fired() ? BodyRead::timeout : BodyRead::closed;
    c.in.commit(n);
  }
}

net::awaitable<bool> write_response(App& app, Client& c, const Response& res, int version_minor,
                                    bool keep_alive, std::string_view request_id, bool head_only) {
  c.out.clear();
  render_response_head(res, version_minor, keep_alive, request_id, c.out);
  const std::array<net::const_buffer, 2> bufs{net::buffer(c.out),
                                              net::buffer(head_only ? std::string_view{} : res.body)};
  c.deadline.expires_after(to_steady(app.cfg.body_timeout));
  if (c.deadline.expired()) co_return false;
  auto [ec, n] = co_await write_all(c.socket, bufs);
  co_return !ec;
}

// After answering before the body was read: stop sending, read and drop at most kDiscardBytes or
// kDiscardTime of what the client is still sending, then close. Past the byte cap we stop reading
// but keep the socket until the time is up: the client's writes stall and it reads our answer,
// where closing at once would reset the connection and destroy the answer in its receive queue.
net::awaitable<void> lingering_close(Client& c) {
  error_code ignored;
  c.socket.shutdown(tcp::socket::shutdown_send, ignored);
  c.in.consume(c.in.size());
  c.in.release();
  c.deadline.expires_after(kDiscardTime);
  std::array<char, 16384> sink;
  std::size_t dropped = 0;
  bool eof = false;
  while (dropped < kDiscardBytes && !c.deadline.expired()) {
    auto [ec, n] = co_await c.socket.async_read_some(net::buffer(sink), use_tuple);
    if (ec) {
      eof = true;  // the client closed (it read our answer), or the deadline passed
      break;
    }
    dropped += n;
  }
  if (!eof && !c.deadline.expired()) co_await c.socket.async_wait(tcp::socket::wait_error, use_tuple);
  c.socket.close(ignored);
}

errc head_error_code(h1::HeadError e) {
  switch (e) {
    case h1::HeadError::head_too_large:
    case h1::HeadError::too_many_fields:
      return errc::header_too_large;
    case h1::HeadError::version_not_supported:
      return errc::version_not_supported;
    case h1::HeadError::unsupported_coding:
      return errc::not_implemented;
    default:
      return errc::invalid_request;
  }
}

core::Error head_error(h1::HeadError e) {
  switch (e) {
    case h1::HeadError::bad_framing:
      return {errc::invalid_request, "The request's Content-Length / Transfer-Encoding framing is invalid."};
    case h1::HeadError::missing_host:
      return {errc::invalid_request, "An HTTP/1.1 request needs exactly one Host header."};
    case h1::HeadError::malformed:
      return {errc::invalid_request, "Malformed HTTP request."};
    default:
      return {head_error_code(e)};
  }
}

core::Error body_error(BodyRead r) {
  switch (r) {
    case BodyRead::timeout:
      return {errc::request_timeout};
    case BodyRead::too_large:
      return {errc::body_too_large};
    case BodyRead::over_budget:
      return {errc::overloaded, "Too many request bodies are being received; retry later."};
    default:
      return {errc::invalid_request, "Malformed chunked request body."};
  }
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// A /v1 request of an authenticated key, for the request log (PostgreSQL, in batches).
core::RequestLog log_row(const Exchange& ex, Clock::time_point start, Clock::time_point end,
                         std::string_view remote) {
  core::RequestLog row;
  row.request_id = ex.request_id;
  row.upstream_request_id = ex.upstream_request_id;
  row.key_id = ex.key->id;
  row.model = ex.model;
  row.provider = ex.provider;
  row.upstream_model = ex.upstream_model;
  row.status = static_cast<int>(ex.status);
  row.error_code = ex.error;
  row.prompt_tokens = ex.usage.prompt_tokens;
  row.completion_tokens = ex.usage.completion_tokens;
  row.cached_tokens = ex.usage.cached_tokens;
  row.cache_creation_tokens = ex.usage.cache_creation_tokens;
  row.total_tokens = ex.usage.total_tokens;
  row.cost = ex.cost;
  row.latency_ms = ms_between(start, end);
  if (ex.first_body_at != Clock::time_point{}) row.ttft_ms = ms_between(start, ex.first_body_at);
  row.is_stream = ex.stream;
  row.attempts = static_cast<int>(ex.attempts.size());
  row.client_addr = remote;
  row.created_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(ex.received_at.time_since_epoch()).count();
  return row;
}

// The API a path belongs to: a bounded label for metrics.
std::string_view api_of(std::string_view path) {
  auto under = [&](std::string_view p) {  // p itself, or p/...
    return path.starts_with(p) && (path.size() == p.size() || path[p.size()] == '/');
  };
  if (path == "/v1/chat/completions") return "chat";
  if (path == "/v1/completions") return "completions";
  if (path == "/v1/embeddings") return "embeddings";
  if (under("/v1/responses")) return "responses";
  if (under("/v1/messages")) return "messages";
  if (under("/v1/models")) return "models";
  if (under("/admin")) return "admin";
  if (under("/health")) return "health";
  if (path == "/metrics") return "metrics";
  return "other";
}

// Metrics of a finished request (labels: only a model that resolved to routes, never a raw name).
void count_request(App& app, const Request& req, const Exchange& ex, Clock::time_point start,
                   Clock::time_point end) {
  const std::string_view model = ex.served ? std::string_view(ex.model) : std::string_view{};
  std::optional<double> ttft;
  if (ex.first_body_at != Clock::time_point{})
    ttft = std::chrono::duration<double>(ex.first_body_at - start).count();
  const double seconds = std::chrono::duration<double>(end - start).count();
  app.metrics.finished(api_of(req.path()), model, ex.provider, ex.status, seconds, ttft,
                       ex.served ? &ex.usage : nullptr, ex.cost);
}

std::int64_t micros_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

void log_request(const Request& req, const Exchange& ex, Clock::time_point start, Clock::time_point end,
                 std::string_view remote) {
  if (!core::log::enabled(core::LogLevel::info)) return;
  // Written field by field into a reused per-thread buffer: no object, no allocation per request.
  core::log::Line line(core::LogLevel::info, "request");
  line.str("method", req.method())
      .str("path", req.path())
      .num("status", ex.status)
      .millis("duration_ms", micros_between(start, end))
      .str("request_id", ex.request_id)
      .str("remote", remote);
  if (!ex.model.empty()) line.str("model", ex.model);
  if (ex.key) line.str("key_id", ex.key->id);
  if (!ex.provider.empty()) line.str("provider", ex.provider);
  if (!ex.upstream_model.empty()) line.str("upstream_model", ex.upstream_model);
  if (!ex.upstream_request_id.empty()) line.str("upstream_request_id", ex.upstream_request_id);
  if (!ex.attempts.empty()) {
    line.open("attempts", '[');
    for (const auto& a : ex.attempts) {
      line.open("", '{').str("provider", a.provider).num("status", a.status).num("ms", a.ms);
      if (!a.error.empty()) line.str("error", a.error);
      line.close('}');
    }
    line.close(']');
  }
  if (!ex.error.empty()) line.str("error", ex.error);
  if (ex.usage.seen) {
    line.num("prompt_tokens", ex.usage.prompt_tokens)
        .num("completion_tokens", ex.usage.completion_tokens)
        .num("total_tokens", ex.usage.total_tokens);
    if (ex.usage.cached_tokens) line.num("cached_tokens", ex.usage.cached_tokens);
  }
  if (ex.cost) line.real("cost", *ex.cost);
  if (ex.first_body_at != Clock::time_point{})
    line.millis("ttft_ms", micros_between(start, ex.first_body_at));
  line.write();
}

std::string remote_address(const tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}

net::awaitable<void> session(App& app, tcp::socket socket) {
  struct Counted {
    Shared& s;
    ~Counted() { s.connections.fetch_sub(1, std::memory_order_relaxed); }
  } counted{app.shared};
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  make_non_blocking(socket);
  const std::string remote = remote_address(socket);
  Client c(app, std::move(socket));
  SessionEntry entry;
  entry.client = &c.socket;
  SessionRegistration registration(app.sessions, entry);
  const h1::Limits limits{.max_head_bytes = app.cfg.max_header_bytes, .max_fields = 128};
  Request req;
  bool first = true;

  while (!app.draining) {
    entry.idle = true;
    const auto [state, head_size] = co_await read_head(app, c, first);
    entry.idle = false;
    first = false;
    const auto start = Clock::now();
    if (state == HeadRead::closed || state == HeadRead::idle_timeout) break;
    if (state != HeadRead::complete) {
      // A head that never ended: 408, or 431 when it outgrew MAX_HEADER_BYTES.
      const Response res = error_response(
          Flavor::openai, {state == HeadRead::timeout ? errc::request_timeout : errc::header_too_large});
      if (co_await write_response(app, c, res, 1, false, core::generate_request_id(), false))
        co_await lingering_close(c);
      break;
    }

    const auto parsed = req.parse(c.in.data().substr(0, head_size), limits);
    c.in.consume(head_size);
    Exchange ex(req, c.socket, c.in, c.deadline, entry);
    const auto client_id = req.header("x-request-id");
    ex.request_id = core::valid_request_id(client_id) ? std::string(client_id) : core::generate_request_id();
    ex.keep_alive = parsed == h1::HeadError::none && req.head().keep_alive;
    const bool body_pending = parsed == h1::HeadError::none && req.head().framing != h1::Framing::none;

    // Everything decided from the head alone, in this order: framing, route, size, credentials.
    std::optional<Response> early;
    Routed routed;
    if (parsed != h1::HeadError::none) {
      early = error_response(Flavor::openai, head_error(parsed));
    } else {
      routed = route(req, app.cfg);
      early = std::move(routed.early);
    }
    if (!early) {
      ex.flavor = routed.endpoint->flavor;
      ex.params = std::move(routed.params);
      if (req.head().framing == h1::Framing::length && req.head().content_length > app.cfg.max_body_bytes) {
        early = ex.fail({errc::body_too_large});
      } else if (routed.endpoint->access == Access::user) {
        auto key = co_await authenticate(app, presented_key(req, ex.flavor));
        if (key)
          ex.key = std::move(*key);
        else
          early = ex.fail(key.error());
      }
    }
    if (early) {
      // Answered before the body was read: unless the whole body is already here (then it is
      // dropped), the connection cannot be trusted to be in step with the client any more.
      const auto& head = req.head();
      if (body_pending && head.framing == h1::Framing::length && c.in.size() >= head.content_length)
        c.in.consume(static_cast<std::size_t>(head.content_length));
      else if (body_pending || parsed != h1::HeadError::none)
        ex.keep_alive = false;
      ex.status = early->status;
      const bool sent = co_await write_response(
          app, c, *early, req.version_minor(), ex.keep_alive && !app.closing(), ex.request_id, req.is_head());
      const auto end = Clock::now();
      log_request(req, ex, start, end, remote);
      count_request(app, req, ex, start, end);
      if (!sent) break;
      if (!ex.keep_alive) {
        co_await lingering_close(c);
        break;
      }
      continue;
    }

    BodyBudget::Lease lease(app.shared.body_budget);
    if (body_pending) {
      if (req.head().expect_continue && c.in.empty()) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        c.deadline.expires_after(to_steady(app.cfg.body_timeout));
        const auto continue_line = net::buffer(kContinue);
        auto [wec, wn] = co_await write_all(c.socket, continue_line);
        if (wec) break;
      }
      const BodyRead got = co_await read_body(app, c, req, lease);
      if (got != BodyRead::complete) {
        if (got == BodyRead::closed) break;
        const Response res = ex.fail(body_error(got));
        ex.status = res.status;
        ex.keep_alive = false;
        const bool sent =
            co_await write_response(app, c, res, req.version_minor(), false, ex.request_id, false);
        log_request(req, ex, start, Clock::now(), remote);
        if (sent && got != BodyRead::timeout) co_await lingering_close(c);
        break;
      }
    }
    c.deadline.expires_never();

    Response res = co_await invoke(app, ex, *routed.endpoint);
    if (!ex.responded) {
      ex.keep_alive = ex.keep_alive && !app.closing();
      ex.status = res.status;
      if (!co_await write_response(app, c, res, req.version_minor(), ex.keep_alive, ex.request_id,
                                   req.is_head()))
        ex.keep_alive = false;
    }
    const auto end = Clock::now();  // one reading for the line, the metrics and the row
    log_request(req, ex, start, end, remote);
    count_request(app, req, ex, start, end);
    if (ex.key && app.shared.request_log) app.shared.request_log(log_row(ex, start, end, remote));
    lease.release();
    req.release_body();
    c.in.shrink();
    if (!ex.keep_alive) break;
  }
  c.socket.shutdown(tcp::socket::shutdown_send, ignored);
  c.socket.close(ignored);
}

// Beyond MAX_CONNECTIONS: a short 503 and close. A few of these linger briefly so the client reads
// the answer rather than a reset; under a flood the rest are closed at once.
std::size_t g_lingering_refusals = 0;  // per worker thread

const std::string& busy_response() {
  static const std::string bytes = [] {
    Response res = error_response(Flavor::openai, {errc::overloaded, "Too many connections; retry later."});
    std::string out;
    render_response_head(res, 1, false, {}, out);
    return out + res.body;
  }();
  return bytes;
}

net::awaitable<void> refuse(App& app, tcp::socket socket) {
  const std::string& kBusy = busy_response();
  error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(kBusy), ec);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  if (g_lingering_refusals >= kMaxLingeringRefusals) co_return;
  ++g_lingering_refusals;
  net::steady_timer wait(app.ioc, std::chrono::milliseconds(500));
  co_await wait.async_wait(use_tuple);
  --g_lingering_refusals;
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
    if (app.shared.connections.fetch_add(1, std::memory_order_relaxed) >= app.shared.max_connections) {
      app.shared.connections.fetch_sub(1, std::memory_order_relaxed);
      net::co_spawn(acceptor.get_executor(), refuse(app, std::move(socket)), net::detached);
      continue;
    }
    auto on_end = [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        core::log::error("session failed", {{"error", x.what()}});
      } catch (...) {
        core::log::error("session failed", {{"error", "unknown exception"}});
      }
    };
    net::co_spawn(acceptor.get_executor(), session(app, std::move(socket)), on_end);
  }
}

void force_close(App& app) {
  app.sessions.for_each([](SessionEntry& s) {
    error_code ec;
    s.client->close(ec);
    s.cancel_upstream();
  });
}

void begin_drain(App& app) {
  app.draining = true;
  app.sessions.for_each([](SessionEntry& s) {
    if (!s.idle) return;
    error_code ec;
    s.client->shutdown(tcp::socket::shutdown_both, ec);
    s.client->cancel(ec);
  });
}

}  // namespace gw
