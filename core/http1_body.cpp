#include "core/http1_body.hpp"

#include "core/ascii.hpp"

#include <algorithm>

namespace core::http1 {
namespace {

// Bytes allowed inside a chunk extension or trailer line: HTAB, SP, VCHAR, obs-text.
bool line_byte(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

constexpr std::size_t kMaxSizeDigits = 15;  // 2^60: far beyond any body

}  // namespace

void ChunkedDecoder::reset() noexcept {
  state_ = State::size_first;
  error_ = BodyError::none;
  remaining_ = 0;
  digits_ = 0;
  line_ = 0;
  trailers_ = 0;
}

BodyStep ChunkedDecoder::fail(BodyError e, std::size_t consumed) noexcept {
  error_ = e;
  return {consumed, {}};
}

BodyStep ChunkedDecoder::decode(std::string_view in) noexcept {
  std::size_t i = 0;
  while (i < in.size() && state_ != State::done && error_ == BodyError::none) {
    if (state_ == State::data) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::data_cr;
      return {i + n, in.substr(i, n)};
    }
    const char c = in[i++];
    switch (state_) {
      case State::size_first:
      case State::size: {
        if (++line_ > limits_.max_line) return fail(BodyError::line_too_long, i);
        const int h = hex_value(c);
        if (h >= 0) {
          if (remaining_ != 0 || h != 0) ++digits_;  // leading zeros are not significant
          if (digits_ > kMaxSizeDigits) return fail(BodyError::malformed, i);
          remaining_ = remaining_ * 16 + static_cast<unsigned>(h);
          state_ = State::size;
        } else if (state_ == State::size_first) {
          return fail(BodyError::malformed, i);
        } else if (c == ';') {
          state_ = State::extension;
        } else if (c == ' ' || c == '\t') {
          state_ = State::size_ws;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else {
          return fail(BodyError::malformed, i);
        }
        break;
      }
      case State::size_ws:
        if (++line_ > limits_.max_line) return fail(BodyError::line_too_long, i);
        if (c == ';')
          state_ = State::extension;
        else if (c == '\r')
          state_ = State::size_lf;
        else if (c != ' ' && c != '\t')
          return fail(BodyError::malformed, i);
        break;
      case State::extension:
        if (++line_ > limits_.max_line) return fail(BodyError::line_too_long, i);
        if (c == '\r')
          state_ = State::size_lf;
        else if (!line_byte(c))
          return fail(BodyError::malformed, i);
        break;
      case State::size_lf:
        if (c != '\n') return fail(BodyError::malformed, i);
        line_ = 0;
        digits_ = 0;
        state_ = remaining_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data_cr:
        if (c != '\r') return fail(BodyError::malformed, i);
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return fail(BodyError::malformed, i);
        state_ = State::size_first;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::final_lf;
          break;
        }
        state_ = State::trailer;
        [[fallthrough]];
      case State::trailer:
        if (++trailers_ > limits_.max_trailers) return fail(BodyError::trailers_too_large, i);
        if (c == '\r')
          state_ = State::trailer_lf;
        else if (!line_byte(c))
          return fail(BodyError::malformed, i);
        break;
      case State::trailer_lf:
        if (c != '\n') return fail(BodyError::malformed, i);
        state_ = State::trailer_start;
        break;
      case State::final_lf:
        if (c != '\n') return fail(BodyError::malformed, i);
        state_ = State::done;
        break;
      case State::data:
      case State::done:
        break;
    }
  }
  return {i, {}};
}

void BodyDecoder::reset(Framing framing, std::uint64_t content_length) noexcept {
  framing_ = framing;
  remaining_ = framing == Framing::length ? content_length : 0;
  closed_ = false;
  error_ = BodyError::none;
  chunked_.reset();
}

BodyStep BodyDecoder::next(std::string_view in) noexcept {
  switch (framing_) {
    case Framing::none:
      return {};
    case Framing::length: {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
      remaining_ -= n;
      return {n, in.substr(0, n)};
    }
    case Framing::chunked:
      return chunked_.decode(in);
    case Framing::until_close:
      return {in.size(), in};
  }
  return {};
}

void BodyDecoder::on_eof() noexcept {
  closed_ = true;
  if (!done() && error_ == BodyError::none) error_ = BodyError::truncated;
}

bool BodyDecoder::done() const noexcept {
  switch (framing_) {
    case Framing::none:
      return true;
    case Framing::length:
      return remaining_ == 0;
    case Framing::chunked:
      return chunked_.done();
    case Framing::until_close:
      return closed_;
  }
  return true;
}

}  // namespace core::http1
