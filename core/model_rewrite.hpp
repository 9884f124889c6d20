#pragma once
// Validation of a /v1 request body and the rewrite of its top-level "model" value.
//
// The body is validated with Boost.JSON's SAX parser (no DOM, no allocation per value) and the
// model value is then replaced by splicing bytes, so everything else reaches the upstream exactly
// as the client sent it: key order, number formatting, unicode escapes. Keys are compared after
// decoding their escapes ("mod\u0065l" is "model"), in both passes, so no spelling needs a DOM.
#include "core/json_scan.hpp"
#include "core/result.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace core {

inline constexpr std::size_t kMaxModelName = 256;  // bytes

struct InferenceRequest {
  bool has_model = false;  // false: the body names no model (a key's default_model may apply)
  std::string model;       // decoded value of the top-level "model"
  bool stream = false;     // top-level "stream": true
  // Byte range of the model value (with its quotes) in the body, when has_model.
  std::size_t model_begin = std::string::npos;
  std::size_t model_end = std::string::npos;
  std::size_t object_begin = 0;  // the top-level '{'
};

// invalid_json for malformed JSON; invalid_request (param "model") when the body is not an
// object, or its model is not a single string, is empty, longer than kMaxModelName bytes or
// contains control characters. A too-long model is refused before it is copied anywhere.
Result<InferenceRequest> inspect_inference_body(std::string_view body);

// The body with the top-level model replaced by upstream_model (JSON-escaped); when the body had
// no model, `"model":...` is inserted as its first member. `extra` (not overlapping the model
// value) is applied in the same pass: the stream_options edit of core::ensure_stream_usage.
std::string rewrite_model(std::string_view body, const InferenceRequest& info, std::string_view upstream_model,
                          const Splice* extra = nullptr);

// JSON string literal (with quotes) for s.
std::string json_quote(std::string_view s);

// A model name we will look up anywhere (cache, Redis, PostgreSQL): 1..kMaxModelName bytes of
// valid UTF-8 without control characters. Names from URLs are percent-decoded bytes, so they are
// checked here before they can reach PostgreSQL as invalid UTF-8.
bool valid_model_name(std::string_view name) noexcept;

bool valid_utf8(std::string_view s) noexcept;

}  // namespace core
