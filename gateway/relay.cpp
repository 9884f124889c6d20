#include "gateway/relay.hpp"

#include "core/ascii.hpp"
#include "core/header_policy.hpp"
#include "core/http1_body.hpp"
#include "core/keys.hpp"
#include "core/relay_plan.hpp"
#include "gateway/client_watch.hpp"
#include "gateway/read_buffer.hpp"
#include "gateway/write_now.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <charconv>
#include <span>

namespace gw {
namespace {

using core::errc;
namespace h1 = core::http1;

// The head (and the start of the body) is read into 16 KiB; body reads then use 1 KiB while they
// trickle (a held stream costs little: SSE events are a few hundred bytes) and grow back to 16 KiB
// for bulk bodies (a read that fills the buffer doubles it).
constexpr std::size_t kReadBufferFirst = 1024;
constexpr std::size_t kReadBuffer = 16 * 1024;
constexpr h1::Limits kUpstreamHead{.max_head_bytes = 64 * 1024, .max_fields = 256};
constexpr h1::ChunkLimits kUpstreamChunks{.max_line = 4096, .max_trailers = 16 * 1024};

bool is_eof(const error_code& ec) {
  return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
}

// Up to one write's worth of buffers: the head, then the body data collected since the last write
// (adjacent spans merged), framed when the write is built, then the last chunk.
class OutBuffers {
 public:
  static constexpr std::size_t kMaxSpans = 32;

  bool full() const noexcept { return spans_ + 4 > kMaxSpans; }  // room for one more decoded piece
  bool has_data() const noexcept { return spans_ > 0; }
  void add_data(std::string_view data) noexcept {
    if (data.empty()) return;
    if (spans_ > 0 && data_[spans_ - 1].data() + data_[spans_ - 1].size() == data.data()) {
      data_[spans_ - 1] = {data_[spans_ - 1].data(), data_[spans_ - 1].size() + data.size()};
      return;
    }
    data_[spans_++] = data;
  }
  // The buffers of one write: `head` (may be empty), the data framed as one chunk when chunked,
  // and the last chunk when `last`.
  std::span<const net::const_buffer> build(std::string_view head, bool chunked, bool last) noexcept {
    count_ = 0;
    add(head);
    std::size_t total = 0;
    for (std::size_t i = 0; i < spans_; ++i) total += data_[i].size();
    if (chunked && total > 0) {
      auto r = std::to_chars(size_line_, size_line_ + 18, total, 16);
      *r.ptr++ = '\r';
      *r.ptr++ = '\n';
      add({size_line_, static_cast<std::size_t>(r.ptr - size_line_)});
    }
    for (std::size_t i = 0; i < spans_; ++i) add(data_[i]);
    if (chunked && total > 0) add("\r\n");
    if (chunked && last) add("0\r\n\r\n");
    return {bufs_.data(), count_};
  }
  void clear() noexcept { spans_ = 0; }

 private:
  void add(std::string_view s) noexcept {
    if (!s.empty()) bufs_[count_++] = net::buffer(s.data(), s.size());
  }
  std::array<std::string_view, kMaxSpans> data_;
  std::array<net::const_buffer, kMaxSpans + 4> bufs_;
  char size_line_[20];
  std::size_t spans_ = 0, count_ = 0;
};

// Why an upstream operation failed, as the client would be told.
errc upstream_error(const UpstreamConn& conn, const error_code& ec, bool partial) {
  if (conn.deadline.fired() || ec == net::error::timed_out) return errc::upstream_timeout;
  if (partial) return errc::upstream_protocol;
  return errc::upstream_unavailable;
}

// Decrypted bytes OpenSSL holds beyond what we read would belong to no request.
bool nothing_buffered(tcp::socket&) {
  return true;
}
bool nothing_buffered(TlsStream& s) {
  return SSL_pending(s.native_handle()) == 0;
}

// Reads a declined response's body whole (it is small: an error) so the response can be replayed
// to the client later. nullopt when it is larger than `limit` or does not arrive in time.
template <class Stream>
net::awaitable<std::optional<CapturedResponse>> capture(Stream& up, UpstreamConn& conn, ReadBuffer& in,
                                                        const h1::ResponseHead& head, std::size_t head_size,
                                                        std::size_t limit, const core::Config& cfg,
                                                        bool& reusable) {
  CapturedResponse cap;
  cap.status = head.status;
  cap.reason = head.reason;
  for (const auto& f : head.fields)
    if (core::forward_to_client(f.name)) cap.headers.emplace_back(f.name, f.value);
  const bool keep_alive = head.keep_alive;
  h1::BodyDecoder body(kUpstreamChunks);
  body.reset(head.framing, head.content_length);
  in.consume(head_size);  // `head` is not used past this line
  conn.deadline.expires_after(
      std::min(to_steady(cfg.upstream_idle_timeout), to_steady(std::chrono::seconds(10))));
  bool eof = false;
  for (;;) {
    while (!in.empty() && !body.done() && !body.failed()) {
      const auto step = body.next(in.data());
      if (cap.body.size() + step.data.size() > limit) co_return std::nullopt;
      cap.body.append(step.data);
      in.consume(step.consumed);
    }
    if (body.failed()) co_return std::nullopt;
    if (body.done()) break;
    if (eof) {
      body.on_eof();
      if (!body.done()) co_return std::nullopt;
      break;
    }
    auto [p, cap_bytes] = in.prepare();
    if (conn.deadline.expired()) co_return std::nullopt;
    auto [ec, n] = co_await up.async_read_some(net::buffer(p, cap_bytes), use_tuple);
    if (is_eof(ec)) {
      eof = true;
      continue;
    }
    if (ec) co_return std::nullopt;
    in.commit(n);
  }
  reusable = keep_alive && !eof && in.empty() && nothing_buffered(up);
  co_return cap;
}

template <class Stream>
net::awaitable<RelayResult> relay_on(Stream& up, UpstreamConn& conn, const UpstreamRequest& rq,
                                     RelayClient& client, const core::Config& cfg, RelayHooks* hooks) {
  RelayResult r;
  auto gone = [&] { return client.session.client_gone; };

  // 0. A client that left while we authenticated or connected is not sent upstream. The look at
  // the socket (a system call) is skipped for a request read a moment ago: its client is there.
  const bool fresh = Clock::now() - client.received_at < std::chrono::milliseconds(1);
  if (gone() || (!fresh && client_gone_now(client.socket))) {
    r.client_gone = r.request_unsent = true;
    co_return r;
  }

  // 1. Request out, response head in: one deadline (UPSTREAM_FIRST_BYTE_TIMEOUT).
  const auto sent_at = Clock::now();
  conn.deadline.expires_after(to_steady(cfg.upstream_first_byte_timeout));
  const std::array<net::const_buffer, 2> request_out{net::buffer(rq.head),
                                                     net::buffer(rq.body.data(), rq.body.size())};
  auto [wec, written] = co_await write_all(up, request_out);
  if (wec) {
    r.client_gone = gone();
    r.error = upstream_error(conn, wec, false);
    r.request_unsent = written == 0;
    co_return r;
  }

  ReadBuffer in(kReadBufferFirst, kUpstreamHead.max_head_bytes);
  in.reserve_first(kReadBuffer);  // the head and the start of the body in one read
  h1::ResponseHead head;
  std::size_t head_size = 0;
  for (;;) {  // interim (1xx) heads are read and dropped until the final one
    std::size_t from = 0;
    h1::HeadScan scan;
    while ((scan = h1::scan_head(in.data(), kUpstreamHead.max_head_bytes, from)).state ==
           h1::HeadScan::State::incomplete) {
      auto [p, cap] = in.prepare();
      if (conn.deadline.expired()) {
        r.error = errc::upstream_timeout;
        co_return r;
      }
      auto [ec, n] = co_await up.async_read_some(net::buffer(p, cap), use_tuple);
      if (ec) {
        r.client_gone = gone();
        r.error = upstream_error(conn, ec, !in.empty());
        co_return r;
      }
      in.commit_and_adapt(n, cap, kReadBuffer);  // a head with little body: the body reads shrink
    }
    r.error = errc::upstream_protocol;
    if (scan.state == h1::HeadScan::State::too_large) co_return r;
    if (h1::parse_response_head(in.data().substr(0, scan.size), rq.method, kUpstreamHead, head) !=
        h1::HeadError::none)
      co_return r;
    if (head.status == 101) co_return r;  // we never asked to switch protocols
    if (!head.interim()) {
      head_size = scan.size;
      break;
    }
    in.consume(scan.size);
  }
  r.error = errc::ok;
  r.head_latency = Clock::now() - sent_at;
  r.status = head.status;
  auto upstream_id = head.get("x-request-id");
  if (upstream_id.empty()) upstream_id = head.get("request-id");  // Anthropic's name
  if (core::valid_request_id(upstream_id)) r.upstream_request_id = upstream_id;
  if (hooks && !hooks->on_head(head)) {
    r.declined = true;
    if (const std::size_t limit = hooks->capture_declined(); limit > 0)
      r.captured = co_await capture(up, conn, in, head, head_size, limit, cfg, r.upstream_reusable);
    co_return r;
  }

  // 2. The client's head: status and reason as the upstream sent them, allowed fields, our framing.
  core::UsageScanner* scanner = hooks ? hooks->body_scanner() : nullptr;
  const auto plan = h1::plan_relay(head, {.version_minor = client.version_minor,
                                          .keep_alive = client.keep_alive,
                                          .body_may_change = scanner && scanner->filtering()});
  std::vector<h1::Field> extra;
  extra.reserve(client.extra.size() + 6);  // the fields below: one allocation
  extra.assign(client.extra.begin(), client.extra.end());
  extra.push_back({"X-Request-Id", client.request_id});
  if (!r.upstream_request_id.empty()) extra.push_back({"X-Upstream-Request-Id", r.upstream_request_id});
  char latency[24];
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.head_latency).count();
  const auto end = std::to_chars(latency, latency + sizeof latency, ms).ptr;
  extra.push_back({"X-LLM-Latency-Ms", {latency, static_cast<std::size_t>(end - latency)}});
  if (core::istarts_with(head.get("content-type"), "text/event-stream")) {
    extra.push_back({"X-Accel-Buffering", "no"});  // nginx must not buffer tokens
    extra.push_back({"Cache-Control", "no-cache"});
  }
  std::string client_head;
  client_head.reserve(512);
  h1::render_relay_head(head, plan, client.version_minor,
                        client.own_rate_headers ? &core::forward_to_limited_client : &core::forward_to_client,
                        extra, client_head);
  const bool upstream_keep_alive = head.keep_alive;
  in.consume(head_size);  // `head` points into `in`: its fields are not used past this line
  // A stream holds this frame for minutes: what only the head needed goes now (client_head once
  // it is written).
  std::vector<h1::Field>().swap(head.fields);
  std::vector<h1::Field>().swap(extra);

  // 3. Body: every upstream read goes out in one client write, the head with the first one.
  h1::BodyDecoder body(kUpstreamChunks);
  body.reset(head.framing, head.content_length);
  const bool chunked = plan.framing == h1::Framing::chunked;
  OutBuffers out;
  auto forward = [&](std::string_view data) { out.add_data(data); };
  bool head_sent = false, upstream_eof = false;
  for (;;) {
    out.clear();
    if (scanner) scanner->release();  // the previous write is done with what it held
    std::size_t used = 0;             // decoded bytes of `in`, consumed once the write is done
    while (used < in.size() && !body.done() && !body.failed() && !out.full()) {
      const auto step = body.next(in.data().substr(used));
      used += step.consumed;
      if (step.data.empty()) continue;
      if (hooks) hooks->on_data(step.data);
      if (scanner)
        scanner->process(step.data, forward);
      else
        out.add_data(step.data);
    }
    if (body.failed()) {  // broken framing (an endless chunk extension, say)
      if (!head_sent) r.error = errc::upstream_protocol;
      co_return r;  // after the head: the client connection is cut without a last chunk
    }
    const bool done = body.done();
    if (done && scanner) scanner->finish(forward);
    if (done && hooks) hooks->on_complete();
    if (!head_sent || out.has_data() || (done && chunked)) {
      const bool with_data = out.has_data();
      const auto buffers =
          out.build(head_sent ? std::string_view{} : std::string_view(client_head), chunked, done);
      client.deadline.expires_after(to_steady(cfg.upstream_idle_timeout));
      if (client.deadline.expired()) co_return r;
      auto [xec, xn] = co_await write_all(client.socket, buffers);
      if (xec) {
        r.client_gone = true;
        co_return r;
      }
      if (!head_sent) std::string().swap(client_head);
      head_sent = r.responded = true;
      if (with_data && r.first_body_at == Clock::time_point{}) r.first_body_at = Clock::now();
    }
    in.consume(used);
    if (done) break;
    if (upstream_eof) {
      body.on_eof();
      if (body.done()) continue;  // a close-delimited body ends here: send the last chunk
      co_return r;                // truncated: cut
    }
    if (!in.empty()) continue;  // the write was full: decode the rest before reading more

    conn.deadline.expires_after(to_steady(cfg.upstream_idle_timeout));
    in.adapt_before_read();
    auto [p, cap] = in.prepare();
    if (conn.deadline.expired() || cap == 0) co_return r;
    auto [ec, n] = co_await up.async_read_some(net::buffer(p, cap), use_tuple);
    if (is_eof(ec)) {
      upstream_eof = true;
      continue;
    }
    if (ec) {
      r.client_gone = gone();
      co_return r;  // upstream reset or went idle mid-body: the client connection is cut
    }
    in.commit_and_adapt(n, cap, kReadBuffer);
  }
  client.deadline.expires_never();
  r.complete = true;
  r.client_keep_alive = plan.keep_alive;
  r.upstream_reusable = upstream_keep_alive && !upstream_eof && in.empty() && nothing_buffered(up);
  co_return r;
}

}  // namespace

net::awaitable<RelayResult> relay(UpstreamConn& upstream, const UpstreamRequest& request, RelayClient& client,
                                  const core::Config& cfg, RelayHooks* hooks) {
  client.session.upstream = &upstream.socket;
  struct Unpublish {
    SessionEntry& s;
    ~Unpublish() { s.upstream = nullptr; }
  } unpublish{client.session};
  if (upstream.tls) co_return co_await relay_on(*upstream.tls, upstream, request, client, cfg, hooks);
  co_return co_await relay_on(upstream.socket, upstream, request, client, cfg, hooks);
}

}  // namespace gw
