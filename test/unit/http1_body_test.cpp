#include "core/http1_body.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace core::http1;

namespace {

struct Decoded {
  std::string data;
  std::size_t consumed = 0;
  bool done = false;
  BodyError error = BodyError::none;
};

// Feeds `in` in pieces of `step` bytes, as reads from a socket would.
Decoded feed(BodyDecoder& d, std::string_view in, std::size_t step = std::string::npos) {
  Decoded out;
  while (out.consumed < in.size() && !d.done() && !d.failed()) {
    std::string_view piece = in.substr(out.consumed, step);
    while (!piece.empty() && !d.done() && !d.failed()) {
      const auto s = d.next(piece);
      out.data.append(s.data);
      out.consumed += s.consumed;
      piece.remove_prefix(s.consumed);
      if (s.consumed == 0) break;
    }
  }
  out.done = d.done();
  out.error = d.error();
  return out;
}

Decoded chunked(std::string_view in, std::size_t step = std::string::npos, ChunkLimits limits = {}) {
  BodyDecoder d(limits);
  d.reset(Framing::chunked, 0);
  return feed(d, in, step);
}

}  // namespace

TEST_CASE("chunked: decodes and stops at the end of the message") {
  const std::string in = "5\r\nhello\r\n6;ext=1; x\r\n world\r\n0\r\n\r\nNEXT";
  for (std::size_t step : {std::size_t(1), std::size_t(2), std::size_t(7), std::string::npos}) {
    auto d = chunked(in, step);
    CHECK(d.done);
    CHECK(d.data == "hello world");
    CHECK(d.consumed == in.size() - 4);  // "NEXT" belongs to the next message
  }
}

TEST_CASE("chunked: hex sizes, trailers, whitespace before extensions") {
  auto d = chunked("A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n");
  CHECK(d.done);
  CHECK(d.data == "0123456789");
  d = chunked("3 ;a=b\r\nabc\r\n00000\r\n\r\n");
  CHECK(d.done);
  CHECK(d.data == "abc");
}

TEST_CASE("chunked: malformed framing") {
  CHECK(chunked("x\r\n").error == BodyError::malformed);
  CHECK(chunked("\r\n").error == BodyError::malformed);
  CHECK(chunked("5\nhello\r\n").error == BodyError::malformed);
  CHECK(chunked("5\r\nhelloX\r\n").error == BodyError::malformed);
  CHECK(chunked("5\r\nhello\r\r").error == BodyError::malformed);
  CHECK(chunked("1000000000000000\r\n").error == BodyError::malformed);  // 2^60: absurd
  CHECK(chunked("5;a\x01\r\n").error == BodyError::malformed);
  CHECK(chunked("0\r\nX\x01\r\n\r\n").error == BodyError::malformed);
  CHECK(chunked("0\r\n\rX").error == BodyError::malformed);
}

TEST_CASE("chunked: an endless extension or trailer is refused after the limit, not buffered") {
  ChunkLimits limits{.max_line = 100, .max_trailers = 200};
  const std::string ext = "5;" + std::string(10000, 'a');
  auto d = chunked(ext, 7, limits);
  CHECK(d.error == BodyError::line_too_long);
  CHECK(d.consumed <= 101);
  const std::string trailer = "0\r\n" + std::string(10000, 'b');
  d = chunked(trailer, 7, limits);
  CHECK(d.error == BodyError::trailers_too_large);
  CHECK(d.consumed <= 204);
  // Leading zeros count towards the line too.
  d = chunked(std::string(200, '0') + "1\r\n", 1000, limits);
  CHECK(d.error == BodyError::line_too_long);
}

TEST_CASE("body: content-length, until close, none, truncation") {
  BodyDecoder d;
  d.reset(Framing::length, 5);
  auto r = feed(d, "helloNEXT", 2);
  CHECK(r.done);
  CHECK(r.data == "hello");
  CHECK(r.consumed == 5);

  d.reset(Framing::length, 10);
  r = feed(d, "hello");
  CHECK_FALSE(r.done);
  d.on_eof();
  CHECK(d.error() == BodyError::truncated);

  d.reset(Framing::until_close, 0);
  r = feed(d, "abc");
  CHECK(r.data == "abc");
  CHECK_FALSE(d.done());
  d.on_eof();
  CHECK(d.done());
  CHECK_FALSE(d.failed());

  d.reset(Framing::none, 0);
  CHECK(d.done());

  d.reset(Framing::chunked, 0);
  feed(d, "5\r\nhel");
  d.on_eof();
  CHECK(d.error() == BodyError::truncated);
}
