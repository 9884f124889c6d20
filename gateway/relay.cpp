#include "gateway/relay.hpp"

#include "core/ascii.hpp"
#include "core/header_policy.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <span>

#include <fmt/format.h>

namespace gw {
namespace {

using core::errc;
constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;
constexpr std::size_t kReadBuffer = 16 * 1024;
constexpr auto kStaleConnectionWindow = std::chrono::milliseconds(250);

bool is_timeout(const beast::error_code& ec) {
  return ec == beast::error::timeout;
}

bool closed_before_answer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::ssl::error::stream_truncated;
}

// "Name: value\r\n" for every field, then the blank line that ends a head.
void append_fields(std::string& out, const http::fields& fields) {
  for (const auto& f : fields) out.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  out.append("\r\n");
}

// The response head as bytes, so it can share one write with the first body bytes.
std::string serialize_head(const http::response<http::empty_body>& head) {
  std::string out = fmt::format("HTTP/{}.{} {} {}\r\n", head.version() / 10, head.version() % 10,
                                head.result_int(), std::string_view(head.reason()));
  append_fields(out, head);
  return out;
}

std::string serialize_request_head(const http::request<http::string_body>& req) {
  std::string out;
  out.reserve(512);
  out.append(req.method_string()).append(" ").append(req.target()).append(" HTTP/1.1\r\n");
  append_fields(out, req);
  return out;
}

// Feeds body bytes already read along with the header to the parser, without I/O. Returns how many
// body bytes landed in buf.
template <std::size_t N>
std::size_t parse_buffered(http::response_parser<http::buffer_body>& parser, beast::flat_buffer& in,
                           std::array<char, N>& buf) {
  parser.get().body().data = buf.data();
  parser.get().body().size = buf.size();
  while (in.size() > 0 && !parser.is_done() && parser.get().body().size > 0) {
    beast::error_code ec;
    const std::size_t used = parser.put(in.data(), ec);
    in.consume(used);
    if (ec || used == 0) break;  // need more bytes, a full buffer, or an error the next read reports
  }
  return buf.size() - parser.get().body().size;
}

// Up to one write's worth of buffers: head, chunk framing, data, last chunk.
class OutBuffers {
 public:
  void add(std::string_view s) {
    if (!s.empty()) bufs_[count_++] = net::buffer(s.data(), s.size());
  }
  void add_body(std::string_view data, bool chunked, bool last_chunk) {
    if (!data.empty()) {
      if (chunked) {
        const auto len = fmt::format_to_n(size_line_, sizeof size_line_, "{:x}\r\n", data.size()).size;
        add({size_line_, len});
        add(data);
        add("\r\n");
      } else {
        add(data);
      }
    }
    if (last_chunk) add("0\r\n\r\n");
  }
  std::span<const net::const_buffer> view() const { return {bufs_.data(), count_}; }

 private:
  std::array<net::const_buffer, 5> bufs_;
  std::size_t count_ = 0;
  char size_line_[24];
};

template <class Stream>
net::awaitable<RelayResult> relay_on(Stream& up, bool reused, RelayRequest& rq) {
  RelayResult r;
  auto& up_tcp = beast::get_lowest_layer(up);

  // 1. Request out, response header in: one deadline (UPSTREAM_FIRST_BYTE_TIMEOUT).
  up_tcp.expires_after(to_steady(rq.cfg.upstream_first_byte_timeout));
  // Head and body in one gather write; cheaper than Beast's generic serializer for a string body.
  const std::string request_head = serialize_request_head(rq.upstream_request);
  const std::array<net::const_buffer, 2> request_out{net::buffer(request_head),
                                                     net::buffer(rq.upstream_request.body())};
  auto [wec, wn] = co_await net::async_write(up, request_out, use_tuple);
  if (wec) {
    r.error = is_timeout(wec) ? errc::upstream_timeout : errc::upstream_unavailable;
    r.retry_on_fresh = reused && !is_timeout(wec);
    co_return r;
  }
  beast::flat_buffer upbuf;
  upbuf.reserve(kReadBuffer);  // an empty flat_buffer reads 512 bytes at a time
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // streamed, never stored
  parser.header_limit(kUpstreamHeaderLimit);
  const auto sent_at = Clock::now();
  auto [hec, hn] = co_await http::async_read_header(up, upbuf, parser, use_tuple);
  if (hec) {
    r.error = is_timeout(hec)             ? errc::upstream_timeout
              : closed_before_answer(hec) ? errc::upstream_unavailable
                                          : errc::upstream_protocol;
    // A pooled connection the provider had already closed fails at once; one that dies later may
    // have been working on the request, and a POST must not run twice.
    r.retry_on_fresh = reused && closed_before_answer(hec) && upbuf.size() == 0 &&
                       Clock::now() - sent_at < kStaleConnectionWindow;
    co_return r;
  }

  // 2. Response header to the client: status and the allowed headers, framing chosen here.
  const auto& uh = parser.get();
  const bool http10 = rq.client_version == 10;
  if (http10) rq.client_keep_alive = false;
  http::response<http::empty_body> head{uh.result(), rq.client_version};
  for (const auto& f : uh)
    if (core::forward_to_client(f.name_string())) head.insert(f.name_string(), f.value());
  if (!rq.client_sent_request_id) {
    const auto upstream_id = uh["x-request-id"];
    if (!upstream_id.empty() && upstream_id.size() <= 128) rq.request_id = std::string(upstream_id);
  }
  head.set("X-Request-Id", rq.request_id);
  if (core::istarts_with(uh[http::field::content_type], "text/event-stream")) {
    head.set("X-Accel-Buffering", "no");  // nginx must not buffer tokens
    head.set(http::field::cache_control, "no-cache");
  }
  const unsigned status = uh.result_int();
  const bool bodiless = status == 204 || status == 304 || (status >= 100 && status < 200);
  bool chunked = false;
  if (bodiless) {
  } else if (parser.is_done()) {
    head.content_length(0);
  } else if (parser.content_length()) {
    head.content_length(*parser.content_length());  // non-stream: same framing as upstream
  } else if (!http10) {
    head.chunked(true);
    chunked = true;
  }  // else: HTTP/1.0, the body ends when the connection closes
  head.keep_alive(rq.client_keep_alive);
  r.status = status;

  // 3. Body: each upstream read goes out as soon as it arrives. The header waits only for body
  // bytes that are already here (parsed without I/O), so a small response costs one write.
  const std::string header = serialize_head(head);
  bool header_sent = false;
  auto lease = rq.buffers.take();
  auto& buf = *lease;
  std::size_t n = parse_buffered(parser, upbuf, buf);
  for (;;) {
    const bool done = parser.is_done();
    if (!header_sent || n > 0 || done) {
      OutBuffers out;
      if (!header_sent) out.add(header);
      out.add_body({buf.data(), n}, chunked, done && chunked);
      rq.client.expires_after(to_steady(rq.cfg.upstream_idle_timeout));
      auto [xec, xn] = co_await net::async_write(rq.client, out.view(), use_tuple);
      if (xec) {
        r.client_gone = true;
        co_return r;
      }
      header_sent = r.responded = true;
    }
    if (done) break;
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    up_tcp.expires_after(to_steady(rq.cfg.upstream_idle_timeout));
    auto [rec, rn] = co_await http::async_read_some(up, upbuf, parser, use_tuple);
    if (rec == http::error::need_buffer) rec = {};
    if (rec) co_return r;  // upstream died or went idle: the caller closes the client connection
    n = buf.size() - parser.get().body().size;
  }
  rq.client.expires_never();
  r.complete = true;
  r.upstream_reusable = parser.keep_alive();
  co_return r;
}

// Completes when the client closes its side; then closes the upstream connection so the provider
// sees the cancellation at once. Data from a pipelining client is left for the session to read.
net::awaitable<void> watch_client(RelayRequest& rq, UpstreamConn& up) {
  auto& client = rq.client;
  auto [ec] = co_await client.socket().async_wait(tcp::socket::wait_read, use_tuple);
  if (rq.relay_done) co_return;  // the relay finished and woke us
  char probe;
  beast::error_code pec;
  const auto n = ec ? 0 : client.socket().receive(net::buffer(&probe, 1), tcp::socket::message_peek, pec);
  if (ec || pec || n == 0) {  // closed, reset, or our socket was closed by a forced shutdown
    beast::error_code ignored;
    up.socket().shutdown(tcp::socket::shutdown_both, ignored);
    up.socket().close(ignored);
    co_return;
  }
  // The client is alive and already sent its next request: nothing more to watch for.
  net::steady_timer forever(client.get_executor(), Clock::time_point::max());
  co_await forever.async_wait(use_tuple);
}

template <class Stream>
net::awaitable<RelayResult> relay_then_wake(Stream& up, bool reused, RelayRequest& rq) {
  RelayResult r = co_await relay_on(up, reused, rq);
  rq.relay_done = true;
  beast::error_code ec;
  rq.client.socket().cancel(ec);  // ends watch_client's wait
  co_return r;
}

}  // namespace

net::awaitable<RelayResult> relay(UpstreamConn& upstream, RelayRequest& rq) {
  using namespace net::experimental::awaitable_operators;
  auto run = [&](auto& stream) { return relay_then_wake(stream, upstream.reused, rq); };
  auto relaying = std::visit(run, upstream.stream);
  auto outcome = co_await (std::move(relaying) || watch_client(rq, upstream));
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  RelayResult gone;
  gone.client_gone = true;
  co_return gone;
}

}  // namespace gw
