#include "core/usage.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstring>

namespace core {
namespace {

namespace json = boost::json;

std::int64_t number(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return 0;
}

const json::object* object(const json::value* v) {
  return v && v->is_object() ? &v->as_object() : nullptr;
}

// Any of the three APIs' usage objects, by the field names each uses.
void apply_usage(const json::object& u, bool anthropic, Usage& out) {
  out.seen = true;
  out.cached_in_prompt = !anthropic;
  if (u.contains("prompt_tokens") || u.contains("input_tokens"))
    out.prompt_tokens = std::max(number(u, "prompt_tokens"), number(u, "input_tokens"));
  if (u.contains("completion_tokens") || u.contains("output_tokens"))
    out.completion_tokens = std::max(number(u, "completion_tokens"), number(u, "output_tokens"));
  if (const auto* d = object(u.if_contains("prompt_tokens_details")))
    out.cached_tokens = number(*d, "cached_tokens");
  if (const auto* d = object(u.if_contains("input_tokens_details")))
    out.cached_tokens = number(*d, "cached_tokens");
  if (u.contains("cache_read_input_tokens")) out.cached_tokens = number(u, "cache_read_input_tokens");
  if (u.contains("cache_creation_input_tokens"))
    out.cache_creation_tokens = number(u, "cache_creation_input_tokens");
  const std::int64_t computed = out.prompt_tokens + out.completion_tokens +
                                (anthropic ? out.cached_tokens + out.cache_creation_tokens : 0);
  out.total_tokens = u.contains("total_tokens") && !anthropic ? number(u, "total_tokens") : computed;
}

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

void UsageScanner::read_usage(std::string_view usage_json) {
  const ParsedObject o(usage_json);
  if (o) apply_usage(*o, format_ == UsageFormat::anthropic_body, usage_);
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
