#include "core/usage.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

namespace core {
namespace {

namespace json = boost::json;

// A JSON number as a token count; a double out of range saturates instead of being undefined.
std::int64_t count_of(double d) noexcept {
  constexpr double kMax = 9223372036854775807.0;  // rounds up to 2^63
  if (d >= kMax) return std::numeric_limits<std::int64_t>::max();
  if (d <= -kMax) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}

// What a usage object says, field by field, before the APIs' names are combined: filled from a
// DOM (streams, whose events are parsed whole anyway) or by the SAX reader (bodies). A field
// present with a value that is not a number counts 0, like an absent one, but is still present.
struct UsageFields {
  struct Count {
    bool present = false;
    std::int64_t value = 0;
  };
  struct Details {  // {prompt,input}_tokens_details: only when the value is an object
    bool is_object = false;
    std::int64_t cached = 0;
  };
  Count prompt, input, completion, output, total, cache_read, cache_creation;
  Details prompt_details, input_details;
};

// The members of a usage object that are read, by name: both readers go through these tables.
constexpr std::pair<std::string_view, UsageFields::Count UsageFields::*> kCounts[] = {
    {"prompt_tokens", &UsageFields::prompt},
    {"input_tokens", &UsageFields::input},
    {"completion_tokens", &UsageFields::completion},
    {"output_tokens", &UsageFields::output},
    {"total_tokens", &UsageFields::total},
    {"cache_read_input_tokens", &UsageFields::cache_read},
    {"cache_creation_input_tokens", &UsageFields::cache_creation},
};
constexpr std::pair<std::string_view, UsageFields::Details UsageFields::*> kDetails[] = {
    {"prompt_tokens_details", &UsageFields::prompt_details},
    {"input_tokens_details", &UsageFields::input_details},
};
constexpr std::string_view kCachedTokens = "cached_tokens";  // inside a details object

std::int64_t number(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.as_uint64());
  if (v.is_double()) return count_of(v.as_double());
  return 0;
}

const json::object* object(const json::value* v) {
  return v && v->is_object() ? &v->as_object() : nullptr;
}

UsageFields fields_of(const json::object& u) {
  UsageFields f;
  for (const auto& [name, count] : kCounts)
    if (const auto* v = u.if_contains(name)) f.*count = {true, number(*v)};
  for (const auto& [name, details] : kDetails) {
    if (const auto* o = object(u.if_contains(name))) {
      const auto* cached = o->if_contains(kCachedTokens);
      f.*details = {true, cached ? number(*cached) : 0};
    }
  }
  return f;
}

// Any of the three APIs' usage objects, by the field names each uses.
void apply_usage(const UsageFields& f, bool anthropic, Usage& out) {
  out.seen = true;
  out.cached_in_prompt = !anthropic;
  if (f.prompt.present || f.input.present) out.prompt_tokens = std::max(f.prompt.value, f.input.value);
  if (f.completion.present || f.output.present)
    out.completion_tokens = std::max(f.completion.value, f.output.value);
  if (f.prompt_details.is_object) out.cached_tokens = f.prompt_details.cached;
  if (f.input_details.is_object) out.cached_tokens = f.input_details.cached;
  if (f.cache_read.present) out.cached_tokens = f.cache_read.value;
  if (f.cache_creation.present) out.cache_creation_tokens = f.cache_creation.value;
  // Saturating: the counts are the provider's numbers, and absurd ones must not overflow.
  const auto add = [](std::int64_t a, std::int64_t b) {
    std::int64_t sum;
    if (!__builtin_add_overflow(a, b, &sum)) return sum;
    return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  };
  std::int64_t computed = add(out.prompt_tokens, out.completion_tokens);
  if (anthropic) computed = add(add(computed, out.cached_tokens), out.cache_creation_tokens);
  out.total_tokens = f.total.present && !anthropic ? f.total.value : computed;
}

void apply_usage(const json::object& u, bool anthropic, Usage& out) {
  apply_usage(fields_of(u), anthropic, out);
}

// Reads UsageFields from the text of a usage object in one pass, building nothing: a body's usage
// is read on every non-streamed request, and a DOM of it (9 nodes) cost 5k instructions. Sees
// the same fields as fields_of() would on the parsed object: a duplicate key's last value wins,
// only depth 1 and the details objects' own members count.
struct UsageHandler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  UsageFields fields;
  int depth = 0;  // containers open
  bool top_is_object = false;
  // The depth-1 member whose value comes next, when it is one that is read (else both null).
  UsageFields::Count* count = nullptr;
  UsageFields::Details* details = nullptr;
  bool key2_cached = false;                    // the member inside a details object is cached_tokens
  UsageFields::Details* in_details = nullptr;  // the details object open at depth 2, if any
  char key[32];
  std::size_t key_len = 0;
  bool key_overflow = false;

  void name_depth1(std::string_view k) noexcept {
    count = nullptr;
    details = nullptr;
    for (const auto& [name, member] : kCounts)
      if (k == name) count = &(fields.*member);
    for (const auto& [name, member] : kDetails)
      if (k == name) details = &(fields.*member);
  }

  // A value starts (a number gives its count; anything else counts 0); `object` opens one.
  void value(std::int64_t n, bool is_object = false) noexcept {
    if (depth == 1) {
      if (count) *count = {true, n};
      if (details) *details = {is_object, 0};
    } else if (depth == 2 && in_details && key2_cached) {
      in_details->cached = n;
    }
  }
  void append_key(json::string_view s) noexcept {
    if (key_overflow || key_len + s.size() > sizeof key) {
      key_overflow = true;
      return;
    }
    std::memcpy(key + key_len, s.data(), s.size());
    key_len += s.size();
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth == 0) top_is_object = true;
    value(0, true);
    if (depth == 1) in_details = details;
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    if (--depth == 1) in_details = nullptr;
    return true;
  }
  bool on_array_begin(json::error_code&) {
    value(0);
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth;
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth <= 2) append_key(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (depth <= 2) {
      append_key(s);
      // A longer name is none of ours (the longest is 27 bytes).
      const std::string_view k = key_overflow ? std::string_view{} : std::string_view(key, key_len);
      if (depth == 1)
        name_depth1(k);
      else
        key2_cached = k == kCachedTokens;
      key_len = 0;
      key_overflow = false;
    }
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) {
    value(0);
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t n, json::string_view, json::error_code&) {
    value(n);
    return true;
  }
  bool on_uint64(std::uint64_t n, json::string_view, json::error_code&) {
    value(static_cast<std::int64_t>(n));
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    value(count_of(d));
    return true;
  }
  bool on_bool(bool, json::error_code&) {
    value(0);
    return true;
  }
  bool on_null(json::error_code&) {
    value(0);
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

// A parsed JSON object whose nodes live in a buffer inside this (on the caller's stack), spilling
// to the heap only for large documents: usage is read from every response, and a heap allocation
// per node showed in profiles. Falsy when the text is not a JSON object.
class ParsedObject {
 public:
  explicit ParsedObject(std::string_view text) {
    json::error_code ec;
    json::value v = json::parse(json::string_view(text.data(), text.size()), ec, json::storage_ptr(&arena_));
    if (!ec && v.is_object()) object_.emplace(std::move(v.as_object()));
  }
  ParsedObject(const ParsedObject&) = delete;
  ParsedObject& operator=(const ParsedObject&) = delete;

  explicit operator bool() const { return object_.has_value(); }
  const json::object& operator*() const { return *object_; }
  const json::object* operator->() const { return &*object_; }

 private:
  alignas(std::max_align_t) unsigned char buffer_[4096];
  json::monotonic_resource arena_{buffer_, sizeof buffer_};
  std::optional<json::object> object_;  // declared after arena_: destroyed before it
};

// Where `needle` (not empty) first occurs in `text` at or after `from`, or npos. glibc's memmem is one hashed
// pass; string_view::find calls memchr at every occurrence of the needle's first byte, and a quoted
// key starts with '"': about 50 calls for one streamed chunk.
std::size_t find_text(std::string_view text, std::string_view needle, std::size_t from = 0) noexcept {
  // (Also keeps an empty view's null data() away from memmem, whose arguments must not be null.)
  if (from > text.size() || text.size() - from < needle.size() || needle.empty())
    return std::string_view::npos;
  const void* at = ::memmem(text.data() + from, text.size() - from, needle.data(), needle.size());
  return at ? static_cast<std::size_t>(static_cast<const char*>(at) - text.data()) : std::string_view::npos;
}

// The value after `"key"` in text starts with '{' (a cheap test before parsing).
bool member_is_object(std::string_view text, std::string_view quoted_key) {
  for (auto at = find_text(text, quoted_key); at != std::string_view::npos;
       at = find_text(text, quoted_key, at + 1)) {
    std::size_t i = at + quoted_key.size();
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\t' || text[i] == ':' || text[i] == '\n' || text[i] == '\r'))
      ++i;
    if (i < text.size() && text[i] == '{') return true;
  }
  return false;
}

std::string error_type_of(const json::object& o) {
  if (const auto* e = object(o.if_contains("error"))) {
    for (const char* k : {"type", "code"})
      if (const auto* v = e->if_contains(k); v && v->is_string()) return std::string(v->as_string());
    return "error";
  }
  return {};
}

}  // namespace

UsageFormat usage_format(std::string_view path, bool event_stream) noexcept {
  if (path == "/v1/chat/completions" || path == "/v1/completions")
    return event_stream ? UsageFormat::openai_stream : UsageFormat::openai_body;
  if (path == "/v1/embeddings") return UsageFormat::openai_body;
  if (path == "/v1/responses")
    return event_stream ? UsageFormat::responses_stream : UsageFormat::responses_body;
  if (path == "/v1/messages")
    return event_stream ? UsageFormat::anthropic_stream : UsageFormat::anthropic_body;
  return UsageFormat::none;
}

std::optional<double> cost_usd(const Usage& u, const Pricing& p) noexcept {
  if (!u.seen || !p.input || !p.output) return std::nullopt;
  const double cached_price = p.cached_input.value_or(*p.input);
  const std::int64_t uncached =
      u.cached_in_prompt ? std::max<std::int64_t>(0, u.prompt_tokens - u.cached_tokens) : u.prompt_tokens;
  const double micro = static_cast<double>(uncached) * *p.input +
                       static_cast<double>(u.cached_tokens) * cached_price +
                       static_cast<double>(u.cache_creation_tokens) * *p.input +
                       static_cast<double>(u.completion_tokens) * *p.output;
  return micro / 1e6;
}

UsageScanner::UsageScanner(UsageFormat format, bool drop_usage_chunk) noexcept
    : format_(format), drop_(drop_usage_chunk && format == UsageFormat::openai_stream) {}

namespace {
std::optional<UsageFields> scan_usage_object(std::string_view text) {
  json::basic_parser<UsageHandler> parser{json::parse_options{}};
  json::error_code ec;
  const std::size_t n = parser.write_some(false, text.data(), text.size(), ec);
  if (ec || n != text.size() || !parser.handler().top_is_object) return std::nullopt;
  return parser.handler().fields;
}
}  // namespace

std::optional<Usage> read_usage_object(std::string_view text, bool anthropic) {
  const auto fields = scan_usage_object(text);
  if (!fields) return std::nullopt;
  Usage u;
  apply_usage(*fields, anthropic, u);
  return u;
}

namespace detail {
std::optional<Usage> read_usage_object_dom(std::string_view text, bool anthropic) {
  const ParsedObject o(text);
  if (!o) return std::nullopt;
  Usage u;
  apply_usage(*o, anthropic, u);
  return u;
}
}  // namespace detail

void UsageScanner::read_usage(std::string_view usage_json) {
  if (const auto fields = scan_usage_object(usage_json))
    apply_usage(*fields, format_ == UsageFormat::anthropic_body, usage_);
}

void UsageScanner::read_openai_chunk(std::string_view data) {
  const bool has_usage = member_is_object(data, "\"usage\"");
  const bool has_error = find_text(data, "\"error\"") != std::string_view::npos;
  if (!has_usage && !has_error) return;
  const ParsedObject o(data);
  if (!o) return;
  if (has_usage)
    if (const auto* u = object(o->if_contains("usage"))) apply_usage(*u, false, usage_);
  if (has_error && !o->contains("choices")) stream_error_ = error_type_of(*o);
}

void UsageScanner::on_event(const SseEvent& e) {
  if (e.oversized) return;  // an event this large carries content, not usage
  switch (format_) {
    case UsageFormat::openai_stream:
      if (e.data != "[DONE]") read_openai_chunk(e.data);
      break;
    case UsageFormat::responses_stream:
      if (e.event == "response.completed" || e.event == "response.incomplete" ||
          e.event == "response.failed") {
        if (const ParsedObject o{e.data}; o) {
          if (const auto* r = object(o->if_contains("response"))) {
            if (const auto* u = object(r->if_contains("usage"))) apply_usage(*u, false, usage_);
            if (e.event == "response.failed") {
              const auto t = error_type_of(*r);
              stream_error_ = t.empty() ? "response_failed" : t;
            }
          }
        }
      } else if (e.event == "error") {
        const ParsedObject o(e.data);
        const auto t = o ? error_type_of(*o) : std::string();
        stream_error_ = t.empty() ? "error" : t;
        if (o && stream_error_ == "error")
          if (const auto* c = o->if_contains("code"); c && c->is_string()) stream_error_ = c->as_string();
      }
      break;
    case UsageFormat::anthropic_stream:
      if (e.event == "message_start") {
        if (const ParsedObject o{e.data}; o)
          if (const auto* m = object(o->if_contains("message")))
            if (const auto* u = object(m->if_contains("usage"))) apply_usage(*u, true, usage_);
      } else if (e.event == "message_delta") {
        // Cumulative counts: they replace what message_start said, never add to it.
        if (const ParsedObject o{e.data}; o)
          if (const auto* u = object(o->if_contains("usage"))) apply_usage(*u, true, usage_);
      } else if (e.event == "error") {
        const ParsedObject o(e.data);
        const auto t = o ? error_type_of(*o) : std::string();
        stream_error_ = t.empty() ? "error" : t;
      }
      break;
    default:
      break;
  }
}

bool UsageScanner::is_usage_only_chunk(const SseEvent& e) const {
  if (!drop_ || e.oversized || e.data.empty() || e.data == "[DONE]") return false;
  if (!member_is_object(e.data, "\"usage\"")) return false;
  const ParsedObject o(e.data);
  if (!o) return false;
  const auto* choices = o->if_contains("choices");
  return choices && choices->is_array() && choices->as_array().empty() && object(o->if_contains("usage"));
}

std::optional<Splice> ensure_stream_usage(std::string_view body, bool& asked) {
  asked = false;
  const auto so = locate_member(body, "stream_options");
  if (!so.found()) {
    const auto open = body.find('{');
    if (open == std::string_view::npos) return std::nullopt;
    const auto next = body.find_first_not_of(" \t\r\n", open + 1);
    const bool empty = next != std::string_view::npos && body[next] == '}';
    return Splice{open + 1, open + 1,
                  std::string(R"("stream_options":{"include_usage":true})") + (empty ? "" : ",")};
  }
  const std::string_view value = body.substr(so.begin, so.end - so.begin);
  if (value.empty() || value.front() != '{')  // null or something odd: replace it
    return Splice{so.begin, so.end, R"({"include_usage":true})"};
  const auto iu = locate_member(value, "include_usage");
  if (iu.found()) {
    if (value.substr(iu.begin, iu.end - iu.begin) == "true") {
      asked = true;
      return std::nullopt;
    }
    return Splice{so.begin + iu.begin, so.begin + iu.end, "true"};
  }
  const auto next = value.find_first_not_of(" \t\r\n", 1);
  const bool empty = next != std::string_view::npos && value[next] == '}';
  return Splice{so.begin + 1, so.begin + 1, std::string(R"("include_usage":true)") + (empty ? "" : ",")};
}

}  // namespace core
