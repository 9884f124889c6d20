#pragma once
// Token usage read from the bytes the relay forwards, in bounded memory, never holding a body:
// OpenAI chat/completions streams (the final usage chunk) and bodies, embeddings, the Responses
// API (response.completed / body usage), Anthropic Messages streams (message_start usage plus the
// cumulative output_tokens of message_delta, not added twice) and bodies. Also notices an error
// reported inside a 200 stream (Anthropic `event: error`, Responses `error` / `response.failed`,
// an OpenAI `{"error":...}` chunk).
//
// For an OpenAI stream whose client did not ask for usage, the gateway asks the provider for it
// (core::ensure_stream_usage) and the scanner drops the usage-only chunk again, so the client
// receives the provider's stream minus exactly that chunk. Complete events pass through at once;
// only an event split across reads waits for its end.
#include "core/domain.hpp"
#include "core/json_scan.hpp"
#include "core/sse.hpp"

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>

namespace core {

struct Usage {
  bool seen = false;
  std::int64_t prompt_tokens = 0;          // input tokens (Anthropic / Responses input_tokens)
  std::int64_t completion_tokens = 0;      // output tokens
  std::int64_t cached_tokens = 0;          // cached input read (OpenAI cached_tokens, Anthropic cache_read)
  std::int64_t cache_creation_tokens = 0;  // Anthropic cache writes
  std::int64_t total_tokens = 0;
  // Anthropic counts cached input apart from input_tokens; OpenAI's prompt_tokens includes it.
  bool cached_in_prompt = true;
};

enum class UsageFormat : unsigned char {
  none,
  openai_stream,     // chat/completions and completions SSE (data: {...}, data: [DONE])
  openai_body,       // chat/completions, completions, embeddings JSON
  responses_stream,  // Responses API SSE (event: response.*)
  responses_body,
  anthropic_stream,  // Messages API SSE (event: message_*)
  anthropic_body,
};

// Which format a response is in: from the API path and whether the response is an event stream.
UsageFormat usage_format(std::string_view path, bool event_stream) noexcept;

// nullopt when input or output price is unknown (or usage was not seen). Cached input is charged
// at cached_input when known, else at the input price; Anthropic cache writes at the input price.
std::optional<double> cost_usd(const Usage& u, const Pricing& p) noexcept;

// The counts in the text of one usage object (any API's names), read in one pass without a DOM;
// nullopt when the text is not a JSON object.
std::optional<Usage> read_usage_object(std::string_view json_text, bool anthropic);
namespace detail {
// The same through a parsed DOM, as the stream events are read: the reference read_usage_object
// is tested against.
std::optional<Usage> read_usage_object_dom(std::string_view json_text, bool anthropic);
}  // namespace detail

class UsageScanner {
 public:
  UsageScanner(UsageFormat format, bool drop_usage_chunk) noexcept;

  // Observes the next body bytes. Calls forward(std::string_view) with the bytes to send on now,
  // in order: `in` itself unless the usage chunk is being dropped. A forwarded view points into
  // `in` or into the scanner, where it stays valid until release().
  template <class F>
  void process(std::string_view in, F&& forward);
  // The forwarded bytes were written: what the scanner held for them can go.
  void release() noexcept { held_out_.clear(); }
  // The body ended: whatever was held goes out.
  template <class F>
  void finish(F&& forward);

  const Usage& usage() const noexcept { return usage_; }
  // An error the provider reported inside a successful (200) response, e.g. "overloaded_error".
  const std::string& stream_error() const noexcept { return stream_error_; }
  bool filtering() const noexcept { return drop_; }

 private:
  void on_event(const SseEvent& e);  // reads usage / errors from one whole event
  bool is_usage_only_chunk(const SseEvent& e) const;
  void read_usage(std::string_view usage_json);
  void read_openai_chunk(std::string_view data);

  UsageFormat format_;
  bool drop_;
  SseSplitter sse_;
  TopLevelMember body_usage_{"usage"};
  // Completed events that were held, forwarded from here. A list: elements never move (forward
  // got views of them) and an empty one allocates nothing, unlike a deque (two blocks up front).
  std::list<std::string> held_out_;
  Usage usage_;
  std::string stream_error_;
};

// Request side: make an OpenAI streaming body ask for usage. Returns the splice to apply (range in
// `body` and its replacement), or nullopt when the body already asks (include_usage: true) or is
// not a streaming request. `asked` tells whether the client itself asked for it.
std::optional<Splice> ensure_stream_usage(std::string_view body, bool& asked);

// ---- template definitions ----

template <class F>
void UsageScanner::process(std::string_view in, F&& forward) {
  switch (format_) {
    case UsageFormat::none:
      forward(in);
      return;
    case UsageFormat::openai_body:
    case UsageFormat::responses_body:
    case UsageFormat::anthropic_body:
      body_usage_.feed(in);
      forward(in);
      return;
    default:
      break;
  }
  if (!drop_) {
    forward(in);
    sse_.feed(in, [&](const SseEvent& e) { on_event(e); });
    return;
  }
  // Dropping: complete events go out as they are seen, the usage-only chunk does not; a partial
  // event waits inside the splitter until its end arrives.
  const char* const in_begin = in.data();
  const char* const in_end = in.data() + in.size();
  sse_.feed(in, [&](const SseEvent& e) {
    on_event(e);
    if (is_usage_only_chunk(e)) return;
    if (e.bytes.data() >= in_begin && e.bytes.data() + e.bytes.size() <= in_end) {
      forward(e.bytes);
    } else {  // it was held: copy it out, since the splitter reuses its buffer
      forward(std::string_view(held_out_.emplace_back(e.bytes)));
    }
  });
}

template <class F>
void UsageScanner::finish(F&& forward) {
  if (format_ == UsageFormat::none || format_ == UsageFormat::openai_body ||
      format_ == UsageFormat::responses_body || format_ == UsageFormat::anthropic_body) {
    if (body_usage_.found()) read_usage(body_usage_.value());
    return;
  }
  sse_.finish([&](const SseEvent& e) {
    on_event(e);
    if (drop_ && !is_usage_only_chunk(e)) forward(std::string_view(held_out_.emplace_back(e.bytes)));
  });
}

}  // namespace core
