#include "core/model_rewrite.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

namespace core {
namespace {

namespace json = boost::json;
using json::error_code;

constexpr std::size_t kMaxTrackedKey = 32;  // longer depth-1 keys cannot be ones we look for

// Tracks only what we need at depth 1 of the top-level object.
struct InspectHandler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  int depth = 0;
  bool top_is_object = false;
  std::string key;  // current depth-1 key, decoded, up to kMaxTrackedKey bytes
  bool key_overflow = false;
  bool key_is_model = false;
  bool key_is_stream = false;
  bool saw_model = false;
  bool model_is_string = false;
  bool model_too_long = false;
  bool duplicate_model = false;
  std::string model;
  bool stream = false;

  // A value starts at depth 1 (inside the top-level object): account it to the current key.
  void value_at_top() {
    if (depth == 1 && key_is_model) {
      if (saw_model) duplicate_model = true;
      saw_model = true;
    }
  }
  void append_key(json::string_view s) {
    if (key.size() + s.size() > kMaxTrackedKey)
      key_overflow = true;
    else
      key.append(s.data(), s.size());
  }
  void append_model(json::string_view s) {
    if (model.size() + s.size() > kMaxModelName)
      model_too_long = true;  // stop copying: the request is refused anyway
    else
      model.append(s.data(), s.size());
  }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    if (depth == 0)
      top_is_object = true;
    else
      value_at_top();
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth;
    return true;
  }
  bool on_array_begin(error_code&) {
    if (depth > 0) value_at_top();
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    --depth;
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    if (depth == 1) append_key(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    if (depth == 1) {
      append_key(s);
      key_is_model = !key_overflow && key == "model";
      key_is_stream = !key_overflow && key == "stream";
      key.clear();
      key_overflow = false;
    }
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    if (depth == 1 && key_is_model && !saw_model) append_model(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code&) {
    if (depth == 1 && key_is_model) {
      if (!saw_model) {
        append_model(s);
        model_is_string = true;
      }
      value_at_top();
    }
    return true;
  }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, error_code&) {
    scalar();
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) {
    scalar();
    return true;
  }
  bool on_double(double, json::string_view, error_code&) {
    scalar();
    return true;
  }
  bool on_bool(bool b, error_code&) {
    if (depth == 1 && key_is_stream) stream = b;
    scalar();
    return true;
  }
  bool on_null(error_code&) {
    scalar();
    return true;
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

  void scalar() {
    if (depth == 1) value_at_top();
  }
};

Error model_error(std::string message) {
  return Error{errc::invalid_request, std::move(message), "model"};
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

bool valid_model_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxModelName) return false;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
  }
  return valid_utf8(name);
}

Result<InferenceRequest> inspect_inference_body(std::string_view body) {
  json::basic_parser<InspectHandler> parser{json::parse_options{}};
  error_code ec;
  const std::size_t n = parser.write_some(false, body.data(), body.size(), ec);
  if (ec || n != body.size())
    return Error{errc::invalid_json, "We could not parse the JSON body of your request."};
  InspectHandler& h = parser.handler();
  if (!h.top_is_object) return Error{errc::invalid_request, "The request body must be a JSON object."};
  InferenceRequest r;
  r.stream = h.stream;
  r.object_begin = body.find('{');
  if (!h.saw_model) return r;
  if (!h.model_is_string || h.duplicate_model) return model_error("'model' must be a single string.");
  if (h.model_too_long)
    return model_error("'model' must be at most " + std::to_string(kMaxModelName) + " bytes.");
  if (h.model.empty()) return model_error("You must provide a model parameter.");
  if (!valid_model_name(h.model)) return model_error("'model' must not contain control characters.");

  r.has_model = true;
  r.model = std::move(h.model);
  // The SAX pass proved "model" a single top-level string: its bytes are found whatever escapes
  // its key is written with.
  const Range model = locate_member(body, "model");
  if (!model.found() || body[model.begin] != '"')
    return Error{errc::internal, "model value not located"};  // cannot happen after the SAX pass
  r.model_begin = model.begin;
  r.model_end = model.end;
  return r;
}

std::string json_quote(std::string_view s) {
  return json::serialize(json::string_view(s.data(), s.size()));
}

std::string rewrite_model(std::string_view body, const InferenceRequest& info, std::string_view upstream_model,
                          const Splice* extra) {
  Splice model;
  if (info.has_model) {
    model = {info.model_begin, info.model_end, json_quote(upstream_model)};
  } else {
    const std::size_t after = info.object_begin + 1;
    const auto next = body.find_first_not_of(" \t\r\n", after);
    const bool empty_object = next != std::string_view::npos && body[next] == '}';
    const bool followed = !empty_object || (extra && extra->begin == after);
    model = {after, after, "\"model\":" + json_quote(upstream_model) + (followed ? "," : "")};
  }
  const Splice* first = &model;
  const Splice* second = extra;
  if (second && second->begin < first->begin) std::swap(first, second);
  std::string out;
  out.reserve(body.size() + model.text.size() + (extra ? extra->text.size() : 0));
  std::size_t at = 0;
  for (const Splice* s : {first, second}) {
    if (!s) continue;
    out.append(body.substr(at, s->begin - at)).append(s->text);
    at = s->end;
  }
  out.append(body.substr(at));
  return out;
}

}  // namespace core
