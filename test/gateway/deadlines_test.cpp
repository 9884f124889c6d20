// The per-worker deadline sweeper (gateway/deadlines.*): a hashed timing wheel. Deadlines fire
// within two ticks of their time, not earlier; one beyond a revolution of the wheel waits for its
// own revolution; re-arming moves it; a destroyed one is forgotten.
#include "gateway/deadlines.hpp"

#include <catch2/catch.hpp>

#include <optional>

namespace {

using namespace gw;
using namespace std::chrono_literals;

// A connected loopback pair; `a` gets a pending read that only a cancellation (or data) ends.
struct Pair {
  net::io_context& io;
  tcp::socket a{io}, b{io};
  explicit Pair(net::io_context& ctx) : io(ctx) {
    tcp::acceptor acc(io, {net::ip::address_v4::loopback(), 0});
    a.connect(acc.local_endpoint());
    acc.accept(b);
  }
};

struct PendingRead {
  char byte = 0;
  std::optional<error_code> result;
  Clock::time_point ended{};
  void start(tcp::socket& s) {
    s.async_read_some(net::buffer(&byte, 1), [this](error_code ec, std::size_t) {
      result = ec;
      ended = Clock::now();
    });
  }
};

void run_for(net::io_context& io, Clock::duration d) {
  io.restart();
  io.run_for(d);
}

}  // namespace

TEST_CASE("a deadline cancels the pending read within two ticks of its time, not before") {
  net::io_context io;
  Deadlines wheel(io.get_executor());
  Pair p(io);
  Deadline d(wheel, p.a);
  PendingRead r;
  r.start(p.a);
  const auto t0 = Clock::now();
  d.expires_after(100ms);
  run_for(io, 60ms);
  CHECK_FALSE(r.result);
  run_for(io, 200ms);
  REQUIRE(r.result);
  CHECK(*r.result == net::error::operation_aborted);
  CHECK(d.fired());
  CHECK(r.ended - t0 >= 100ms);
  CHECK(r.ended - t0 < 100ms + 2 * Deadlines::kTick + 30ms);
  CHECK(wheel.size() == 0);  // a fired deadline leaves the wheel
}

TEST_CASE("a deadline more than one revolution away is not fired when its slot comes round early") {
  net::io_context io;
  Deadlines wheel(io.get_executor());
  Pair far_pair(io), near_pair(io);
  Deadline far(wheel, far_pair.a), near(wheel, near_pair.a);
  PendingRead far_read, near_read;
  far_read.start(far_pair.a);
  near_read.start(near_pair.a);
  // Same slot, one revolution apart.
  const auto revolution = Deadlines::kSlots * Deadlines::kTick;
  const auto at = Clock::now() + 50ms;
  near.expires_at(at);
  far.expires_at(at + revolution);
  run_for(io, 250ms);
  REQUIRE(near_read.result);
  CHECK_FALSE(far_read.result);
  CHECK_FALSE(far.fired());
  CHECK(wheel.size() == 1);
  far.expires_never();  // leaves the wheel; the pending read stays
  CHECK(wheel.size() == 0);
  far_pair.a.close();
  run_for(io, 50ms);
}

TEST_CASE("re-arming moves a deadline; an expired time set later still fires; a destroyed one is forgotten") {
  net::io_context io;
  Deadlines wheel(io.get_executor());
  Pair p(io);
  PendingRead r;
  r.start(p.a);
  {
    Deadline gone(wheel, p.b);
    gone.expires_after(30ms);
    CHECK(wheel.size() == 1);
  }
  CHECK(wheel.size() == 0);
  Deadline d(wheel, p.a);
  d.expires_after(40ms);
  d.expires_after(10s);  // pushed back: must not fire at 40 ms
  run_for(io, 150ms);
  CHECK_FALSE(r.result);
  d.expires_at(Clock::now() - 1s);  // already past: fires at the next sweep
  CHECK(d.expired());
  run_for(io, 3 * Deadlines::kTick + 20ms);
  REQUIRE(r.result);
  CHECK(*r.result == net::error::operation_aborted);
}
