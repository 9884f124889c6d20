#pragma once
// HTTP/1.1 message bodies, sans-io. The decoders never copy or buffer: they walk the caller's bytes
// with a byte-level state machine and hand back spans of body data inside them. A chunk-size line
// (with extensions) and the trailer section are counted, not stored, so a peer sending an endless
// chunk extension costs nothing but a counter before it is refused.
#include "core/http1.hpp"

#include <cstdint>
#include <string_view>

namespace core::http1 {

enum class BodyError : std::uint8_t {
  none,
  malformed,           // bad chunk framing
  line_too_long,       // a chunk-size line (with extensions) over the limit
  trailers_too_large,  // trailer section over the limit
  truncated,           // the connection ended before the body did
};

struct ChunkLimits {
  std::size_t max_line = 4096;         // chunk size + extensions, per line
  std::size_t max_trailers = 16 * 1024;  // all trailer lines together
};

// One step of decoding: `consumed` input bytes were used; `data` (possibly empty) is body data
// inside the input. Feed the rest of the input again until it is used up, done() or failed().
struct BodyStep {
  std::size_t consumed = 0;
  std::string_view data;
};

class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(ChunkLimits limits = {}) noexcept : limits_(limits) {}
  void reset() noexcept;

  BodyStep decode(std::string_view in) noexcept;

  bool done() const noexcept { return state_ == State::done; }
  BodyError error() const noexcept { return error_; }
  bool failed() const noexcept { return error_ != BodyError::none; }

 private:
  enum class State : std::uint8_t {
    size_first,  // first hex digit of a chunk size
    size,        // more hex digits, or what follows them
    size_ws,     // whitespace after the size (BWS before ';' or CR)
    extension,   // chunk extension bytes, up to CR
    size_lf,     // LF closing the size line
    data,        // chunk data
    data_cr,     // CR after chunk data
    data_lf,     // LF after chunk data
    trailer_start,
    trailer,
    trailer_lf,
    final_lf,
    done,
  };
  BodyStep fail(BodyError e, std::size_t consumed) noexcept;

  ChunkLimits limits_;
  State state_ = State::size_first;
  BodyError error_ = BodyError::none;
  std::uint64_t remaining_ = 0;  // of the current chunk
  std::size_t digits_ = 0;       // significant hex digits of the current size
  std::size_t line_ = 0;         // bytes of the current size line
  std::size_t trailers_ = 0;     // bytes of the trailer section
};

// Any framing: Content-Length, chunked, until close, or none.
class BodyDecoder {
 public:
  explicit BodyDecoder(ChunkLimits limits = {}) noexcept : chunked_(limits) {}
  void reset(Framing framing, std::uint64_t content_length) noexcept;

  BodyStep next(std::string_view in) noexcept;
  // The peer closed the connection: ends an until_close body; truncates any other unfinished one.
  void on_eof() noexcept;

  bool done() const noexcept;
  bool failed() const noexcept { return error_ != BodyError::none || chunked_.failed(); }
  BodyError error() const noexcept { return error_ != BodyError::none ? error_ : chunked_.error(); }
  Framing framing() const noexcept { return framing_; }
  std::uint64_t remaining() const noexcept { return remaining_; }  // for length framing

 private:
  Framing framing_ = Framing::none;
  std::uint64_t remaining_ = 0;
  bool closed_ = false;
  BodyError error_ = BodyError::none;
  ChunkedDecoder chunked_;
};

}  // namespace core::http1
