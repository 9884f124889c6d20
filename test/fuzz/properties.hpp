#pragma once
// Properties the parsers must hold for ANY input. Used by the libFuzzer targets (clang, coverage
// guided, scripts/fuzz.sh) and by a deterministic random-input unit test (every build, ASan too).
// A violated property aborts, which both harnesses report.
#include "core/http1.hpp"
#include "core/http1_body.hpp"
#include "core/model_rewrite.hpp"
#include "core/usage.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

inline void require(bool ok) {
  if (!ok) std::abort();
}

inline bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// A parsed field's line: inside the head, from its name to a CRLF that ends it, value within.
inline bool line_of(const core::http1::Field& f, std::string_view head) {
  return inside(f.line, head) && f.line.data() == f.name.data() && f.line.size() >= f.name.size() + 3 &&
         f.line.substr(f.line.size() - 2) == "\r\n" && f.line.find("\r\n") == f.line.size() - 2 &&
         f.value.data() >= f.line.data() &&
         f.value.data() + f.value.size() <= f.line.data() + f.line.size() - 2;
}

// Request and response heads: never read outside the input, views stay inside it, and a parsed
// head is self-consistent.
inline void http1_heads(std::string_view in) {
  std::size_t from = 0;
  const auto scan = core::http1::scan_head(in, 4096, from);
  require(scan.size <= in.size());
  const std::string_view head = scan.state == core::http1::HeadScan::State::complete ? in.substr(0, scan.size) : in;
  core::http1::RequestHead req;
  if (core::http1::parse_request_head(head, {.max_head_bytes = 4096, .max_fields = 32}, req) ==
      core::http1::HeadError::none) {
    require(inside(req.method, head) && inside(req.target, head));
    require(core::http1::is_token(req.method) && !req.target.empty() && req.target[0] == '/');
    require(req.fields.size() <= 32);
    for (const auto& f : req.fields)
      require(inside(f.name, head) && inside(f.value, head) && core::http1::is_token(f.name) &&
              line_of(f, head));
    require(req.framing != core::http1::Framing::until_close);
    require(req.framing != core::http1::Framing::length || req.content_length > 0);
  }
  core::http1::ResponseHead res;
  if (core::http1::parse_response_head(head, "POST", {}, res) == core::http1::HeadError::none) {
    require(res.status >= 100 && res.status <= 999 && inside(res.reason, head));
    require(core::http1::is_field_value(res.reason));
    for (const auto& f : res.fields)
      require(inside(f.name, head) && inside(f.value, head) && line_of(f, head));
  }
}

struct Decoded {
  std::string data;
  std::size_t consumed = 0;
  bool done = false;
  core::http1::BodyError error = core::http1::BodyError::none;
};

inline Decoded decode_chunked(std::string_view in, std::size_t step) {
  core::http1::BodyDecoder d({.max_line = 64, .max_trailers = 128});
  d.reset(core::http1::Framing::chunked, 0);
  Decoded out;
  while (out.consumed < in.size() && !d.done() && !d.failed()) {
    std::string_view piece = in.substr(out.consumed, step);
    const auto s = d.next(piece);
    require(s.consumed <= piece.size() && inside(s.data, piece));
    require(s.consumed > 0 || d.done() || d.failed());
    out.data.append(s.data);
    out.consumed += s.consumed;
  }
  out.done = d.done();
  out.error = d.error();
  return out;
}

// Chunked decoding: the result does not depend on how the input is split into reads, and a failed
// decode stops within the limits (an endless extension costs at most max_line bytes).
inline void chunked_body(std::string_view in) {
  const Decoded whole = decode_chunked(in, std::string::npos);
  for (std::size_t step : {std::size_t(1), std::size_t(3), std::size_t(17)}) {
    const Decoded split = decode_chunked(in, step);
    require(split.data == whole.data && split.done == whole.done && split.error == whole.error &&
            split.consumed == whole.consumed);
  }
  require(whole.data.size() <= in.size());
}

// Body inspection and rewrite: a valid body rewritten to another model inspects as that model, and
// only the model value's bytes changed.
inline void inference_body(std::string_view in) {
  auto info = core::inspect_inference_body(in);
  if (!info) return;
  const std::string out = core::rewrite_model(in, *info, "up/model\"x");
  if (!info->has_model) {  // inserted as the first member; the rest is untouched
    require(out.size() > in.size() && out.compare(out.size() - (in.size() - info->object_begin - 1),
                                                  std::string::npos, in.substr(info->object_begin + 1)) == 0);
    auto again = core::inspect_inference_body(out);
    require(again && again->has_model && again->model == "up/model\"x");
    return;
  }
  require(core::valid_model_name(info->model));
  require(info->model_begin < info->model_end && info->model_end <= in.size());
  require(out.compare(0, info->model_begin, in.substr(0, info->model_begin)) == 0);
  require(std::string_view(out).substr(out.size() - (in.size() - info->model_end)) == in.substr(info->model_end));
  auto again = core::inspect_inference_body(out);
  require(again && again->model == "up/model\"x" && again->stream == info->stream);
}

struct Scanned {
  std::string out;
  core::Usage usage;
  std::string error;
};

inline Scanned scan_usage(std::string_view in, core::UsageFormat f, bool drop, std::size_t step) {
  core::UsageScanner s(f, drop);
  Scanned r;
  for (std::size_t i = 0; i < in.size(); i += step)
    s.process(in.substr(i, step), [&](std::string_view b) { r.out.append(b); });
  s.finish([&](std::string_view b) { r.out.append(b); });
  r.usage = s.usage();
  r.error = s.stream_error();
  return r;
}

// Usage scanning: what is forwarded and what is read do not depend on how reads split the body;
// without dropping, every byte is forwarded unchanged; with dropping, the output is the input
// with whole events removed (never longer, never reordered).
inline void usage_stream(std::string_view in) {
  using F = core::UsageFormat;
  for (F f : {F::openai_stream, F::openai_body, F::responses_stream, F::anthropic_stream, F::anthropic_body}) {
    for (bool drop : {false, true}) {
      const Scanned whole = scan_usage(in, f, drop, in.size() + 1);
      const bool drops = drop && f == F::openai_stream;
      if (!drops) require(whole.out == in);
      require(whole.out.size() <= in.size());
      for (std::size_t step : {std::size_t(1), std::size_t(7)}) {
        const Scanned split = scan_usage(in, f, drop, step);
        require(split.out == whole.out && split.usage.seen == whole.usage.seen &&
                split.usage.prompt_tokens == whole.usage.prompt_tokens &&
                split.usage.completion_tokens == whole.usage.completion_tokens && split.error == whole.error);
      }
    }
  }
}

inline bool same_usage(const std::optional<core::Usage>& a, const std::optional<core::Usage>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->seen == b->seen && a->prompt_tokens == b->prompt_tokens &&
                a->completion_tokens == b->completion_tokens && a->cached_tokens == b->cached_tokens &&
                a->cache_creation_tokens == b->cache_creation_tokens && a->total_tokens == b->total_tokens &&
                a->cached_in_prompt == b->cached_in_prompt);
}

// A usage object read in one pass (bodies) says what the parsed DOM (stream events) says.
inline void usage_object(std::string_view in) {
  for (bool anthropic : {false, true})
    require(same_usage(core::read_usage_object(in, anthropic),
                       core::detail::read_usage_object_dom(in, anthropic)));
}

}  // namespace fuzz
