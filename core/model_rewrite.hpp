#pragma once
// Validation of a /v1 request body and the rewrite of its top-level "model" value.
//
// The body is validated with Boost.JSON's SAX parser (no DOM, no allocation per value) and the
// model value is then replaced by splicing bytes, so everything else reaches the upstream exactly
// as the client sent it: key order, number formatting, unicode escapes.
#include "core/result.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace core {

struct InferenceRequest {
  std::string model;    // decoded value of the top-level "model"
  bool stream = false;  // top-level "stream": true
  // Byte range of the model value (including its quotes) in the body; npos when the key was
  // written with escapes, in which case rewrite_model falls back to a DOM round trip.
  std::size_t model_begin = std::string::npos;
  std::size_t model_end = std::string::npos;
};

// invalid_json for malformed JSON; invalid_request (param "model") when the body is not an
// object or has no string "model".
Result<InferenceRequest> inspect_inference_body(std::string_view body);

// The body with the top-level model replaced by upstream_model (JSON-escaped).
std::string rewrite_model(std::string_view body, const InferenceRequest& info,
                          std::string_view upstream_model);

// JSON string literal (with quotes) for s.
std::string json_quote(std::string_view s);

}  // namespace core
