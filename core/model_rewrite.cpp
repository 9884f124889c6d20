#include "core/model_rewrite.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace core {
namespace {

namespace json = boost::json;
using json::error_code;

// Tracks only what we need at depth 1 of the top-level object.
struct InspectHandler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  int depth = 0;
  bool top_is_object = false;
  std::string key;  // current depth-1 key
  bool key_is_model = false;
  bool key_is_stream = false;
  bool saw_model = false;
  bool model_is_string = false;
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
    if (depth == 1) key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    if (depth == 1) {
      key.append(s.data(), s.size());
      key_is_model = key == "model";
      key_is_stream = key == "stream";
      key.clear();
    }
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    if (depth == 1 && key_is_model) model.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code&) {
    if (depth == 1 && key_is_model) {
      value_at_top();
      model.append(s.data(), s.size());
      model_is_string = true;
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

// Position just after the JSON string starting at s[i] == '"'.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
  }
  return s.size();
}

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Finds the byte range of the top-level "model" string value in an already validated object.
// Only an unescaped key spelled exactly "model" is recognised; anything else returns false.
bool locate_model(std::string_view s, std::size_t& begin, std::size_t& end) {
  int depth = 0;
  bool expect_key = false;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '"') {
      const std::size_t close = skip_string(s, i);
      if (depth == 1 && expect_key) {
        const bool is_model = s.substr(i, close - i) == "\"model\"";
        std::size_t j = close;
        while (j < s.size() && (is_ws(s[j]) || s[j] == ':')) ++j;
        if (is_model && j < s.size() && s[j] == '"') {
          begin = j;
          end = skip_string(s, j);
          return true;
        }
        expect_key = false;
        i = j;
        continue;
      }
      i = close;
      continue;
    }
    if (c == '{') {
      ++depth;
      expect_key = depth == 1;
    } else if (c == '[')
      ++depth;
    else if (c == '}' || c == ']')
      --depth;
    else if (c == ',' && depth == 1)
      expect_key = true;
    ++i;
  }
  return false;
}

}  // namespace

Result<InferenceRequest> inspect_inference_body(std::string_view body) {
  json::basic_parser<InspectHandler> parser{json::parse_options{}};
  error_code ec;
  const std::size_t n = parser.write_some(false, body.data(), body.size(), ec);
  if (ec || n != body.size())
    return Error{errc::invalid_json, "We could not parse the JSON body of your request."};
  InspectHandler& h = parser.handler();
  if (!h.top_is_object) return Error{errc::invalid_request, "The request body must be a JSON object."};
  if (!h.saw_model) return Error{errc::invalid_request, "You must provide a model parameter.", "model"};
  if (!h.model_is_string || h.duplicate_model)
    return Error{errc::invalid_request, "'model' must be a single string.", "model"};

  InferenceRequest r;
  r.model = std::move(h.model);
  r.stream = h.stream;
  std::size_t b = 0, e = 0;
  if (locate_model(body, b, e)) {
    r.model_begin = b;
    r.model_end = e;
  }
  return r;
}

std::string json_quote(std::string_view s) {
  return json::serialize(json::string_view(s.data(), s.size()));
}

std::string rewrite_model(std::string_view body, const InferenceRequest& info,
                          std::string_view upstream_model) {
  if (info.model_begin != std::string::npos) {
    const std::string quoted = json_quote(upstream_model);
    std::string out;
    out.reserve(body.size() - (info.model_end - info.model_begin) + quoted.size());
    out.append(body.substr(0, info.model_begin));
    out.append(quoted);
    out.append(body.substr(info.model_end));
    return out;
  }
  // Rare: the key was spelled with escapes. Correct but not byte-preserving.
  json::value v = json::parse(json::string_view(body.data(), body.size()));
  v.as_object()["model"] = json::string_view(upstream_model.data(), upstream_model.size());
  return json::serialize(v);
}

}  // namespace core
