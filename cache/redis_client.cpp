#include "cache/redis_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <optional>

namespace cache {

namespace asio = boost::asio;
using std::chrono::steady_clock;

namespace {

using detail::use_tuple;

using detail::unavailable;

}  // namespace

// The waiter sleeps on `timer` until the deadline; the reader (or a failure) cancels it early. Entries
// whose waiter gave up stay queued, so the replies that still arrive line up with the right commands.
struct RedisClient::Pending {
  Pending(asio::any_io_executor ex, std::chrono::milliseconds timeout, std::size_t n)
      : timer(std::move(ex), timeout), expected(n) {
    replies.reserve(n);
  }
  asio::steady_timer timer;
  std::size_t expected;
  std::vector<Reply> replies;
  std::optional<core::Error> error;
  steady_clock::time_point queued = steady_clock::now();
  std::function<void(std::vector<Reply>&)> on_replies;  // send(): called once all replies arrived
};

RedisClient::RedisClient(asio::any_io_executor ex, RedisOptions opts)
    : ex_(std::move(ex)), opts_(std::move(opts)), sock_(ex_), write_signal_(ex_), backoff_(ex_) {}

void RedisClient::start() {
  if (std::exchange(started_, true)) return;
  asio::co_spawn(ex_, run(shared_from_this()), asio::detached);
}

void RedisClient::stop() {
  stopped_ = true;
  drop_connection();
  backoff_.cancel();
  for (auto* waiter : connect_waiters_) waiter->cancel();
}

void RedisClient::drop_connection() {
  connected_ = false;
  boost::system::error_code ignored;
  sock_.close(ignored);  // makes the reader, and so run(), notice
  write_signal_.cancel();
  fail_pending();
}

void RedisClient::fail_pending() {
  for (auto& p : pending_) {
    p->error = unavailable("redis connection lost");
    p->timer.cancel();
  }
  pending_.clear();
  pending_commands_ = 0;
  out_.clear();
}

// Replies are overdue by far more than any waiter is willing to wait: Redis is hung or the network is
// gone without a reset. Reconnecting is the only way to recover the pipeline.
bool RedisClient::overdue() const {
  return !pending_.empty() && steady_clock::now() - pending_.front()->queued > 2 * opts_.command_timeout;
}

asio::awaitable<void> RedisClient::run(std::shared_ptr<RedisClient> self) {
  auto backoff = kMinBackoff;
  while (!stopped_) {
    ReplyParser parser;
    const bool ok = static_cast<bool>(co_await connect_redis(sock_, parser, opts_));
    if (stopped_) break;
    if (ok) {
      backoff = kMinBackoff;
      connected_ = true;
      asio::co_spawn(ex_, write_loop(self, ++generation_), asio::detached);
      for (auto* waiter : connect_waiters_) waiter->cancel();
      if (on_connected_) on_connected_();
      co_await read_loop(parser);
      drop_connection();
      if (stopped_) break;
    }
    backoff_.expires_after(backoff);
    co_await backoff_.async_wait(use_tuple);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

asio::awaitable<void> RedisClient::read_loop(ReplyParser& parser) {
  for (;;) {
    auto reply = co_await read_reply(sock_, parser);
    if (!reply || pending_.empty()) co_return;  // I/O or protocol error, or a reply nobody asked for
    auto p = pending_.front();
    p->replies.push_back(std::move(*reply));
    --pending_commands_;
    if (p->replies.size() == p->expected) {
      pending_.pop_front();
      p->timer.cancel();
      if (p->on_replies) p->on_replies(p->replies);  // may send() more
    }
  }
}

asio::awaitable<void> RedisClient::write_loop(std::shared_ptr<RedisClient> self, std::uint64_t generation) {
  std::string writing;  // out_ keeps collecting commands while this buffer is on the wire
  auto current = [&] { return generation == generation_ && !stopped_; };
  while (current()) {
    if (out_.empty()) {
      // Idle: sleep until a command arrives, but wake once per command_timeout to check for a hang.
      write_signal_.expires_after(opts_.command_timeout);
      co_await write_signal_.async_wait(use_tuple);
      if (current() && overdue()) drop_connection();
      continue;
    }
    writing.clear();
    writing.swap(out_);
    writing_ = true;
    auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(writing), use_tuple);
    writing_ = false;
    if (ec) {
      if (current()) drop_connection();
      co_return;
    }
  }
}

// Hands out_ to the kernel on the spot when the writer has nothing on the wire (so nothing written
// later can overtake it): a command queued before a client's answer is sent (a budget's reconcile)
// is then in Redis's socket before the answer's last bytes leave, and no command waits for the
// writer coroutine's turn on the loop. Whatever the kernel does not take now (EAGAIN, a partial
// write, an error) stays in out_, and write_loop is woken for it (it also reports errors).
void RedisClient::flush_now() {
  if (!writing_ && !out_.empty() && connected_) {
    const ssize_t n = ::send(sock_.native_handle(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) out_.erase(0, static_cast<std::size_t>(n));
  }
  if (!out_.empty()) write_signal_.cancel();
}

namespace {

EncodedCommands encode(const std::vector<std::vector<std::string>>& cmds) {
  EncodedCommands out;
  for (const auto& c : cmds) {
    encode_command(c, out.bytes);
    ++out.count;
  }
  return out;
}

// An empty command encodes as "*0", which Redis silently ignores: no reply would ever come.
bool any_empty(const std::vector<std::vector<std::string>>& cmds) {
  return std::ranges::any_of(cmds, [](const auto& c) { return c.empty(); });
}

}  // namespace

asio::awaitable<core::Result<std::vector<Reply>>> RedisClient::pipeline(
    std::vector<std::vector<std::string>> cmds) {
  if (any_empty(cmds)) co_return core::Error{core::errc::internal, "empty redis command"};
  auto encoded = encode(cmds);  // named first: GCC 12 and temporaries in co_await (scripts/lint.sh)
  co_return co_await pipeline(std::move(encoded));
}

asio::awaitable<core::Result<std::vector<Reply>>> RedisClient::pipeline(EncodedCommands cmds) {
  auto self = shared_from_this();  // we touch members after resuming
  if (!connected_) {
    ++failures_;
    co_return unavailable("redis not connected");
  }
  if (cmds.count == 0) co_return std::vector<Reply>{};
  if (pending_commands_ + cmds.count > opts_.max_pending)
    co_return core::Error{core::errc::overloaded, "too many cache commands in flight"};

  auto p = std::make_shared<Pending>(ex_, opts_.command_timeout, cmds.count);
  out_.append(cmds.bytes);
  pending_.push_back(p);
  pending_commands_ += cmds.count;
  flush_now();

  co_await p->timer.async_wait(use_tuple);
  latency_.observe(std::chrono::duration<double>(steady_clock::now() - p->queued).count());
  if (p->error) {
    ++failures_;
    co_return std::move(*p->error);
  }
  if (p->replies.size() < p->expected) {
    ++failures_;
    if (overdue()) drop_connection();
    co_return unavailable("redis command timed out");
  }
  co_return std::move(p->replies);
}

bool RedisClient::send(const std::vector<std::vector<std::string>>& cmds,
                       std::function<void(std::vector<Reply>&)> on_replies) {
  if (any_empty(cmds)) return false;
  return send(encode(cmds), std::move(on_replies));
}

bool RedisClient::send(const EncodedCommands& cmds, std::function<void(std::vector<Reply>&)> on_replies) {
  if (!connected_ || cmds.count == 0 || pending_commands_ + cmds.count > opts_.max_pending) {
    ++failures_;
    return false;
  }
  auto p = std::make_shared<Pending>(ex_, opts_.command_timeout, cmds.count);  // nobody waits on it
  p->on_replies = std::move(on_replies);
  out_.append(cmds.bytes);
  pending_.push_back(std::move(p));
  pending_commands_ += cmds.count;
  flush_now();
  return true;
}

asio::awaitable<core::Result<Reply>> RedisClient::command(std::vector<std::string> args) {
  if (args.empty()) co_return core::Error{core::errc::internal, "empty redis command"};
  EncodedCommands cmd;
  encode_command(args, cmd.bytes);
  cmd.count = 1;
  auto replies = co_await pipeline(std::move(cmd));
  if (!replies) co_return std::move(replies).error();
  co_return std::move(replies->front());
}

asio::awaitable<bool> RedisClient::wait_connected(std::chrono::milliseconds deadline) {
  auto self = shared_from_this();
  if (connected_ || stopped_) co_return connected_;
  asio::steady_timer timer(ex_, deadline);
  connect_waiters_.push_back(&timer);  // run() cancels it on connect, stop() on stop
  co_await timer.async_wait(use_tuple);
  std::erase(connect_waiters_, &timer);
  co_return connected_;
}

}  // namespace cache
