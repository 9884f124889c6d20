#pragma once
// Values <-> the JSON stored in Redis (model routes, key records). Contains no secrets. Limits
// (KeyRecord::limits, RouteTarget::provider_limits) are written only when set; values written
// without them decode as unlimited, a limit of the wrong type fails the decode.
#include "core/domain.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace core {

std::string encode_routes(const ModelRoutes& m);
std::optional<ModelRoutes> decode_routes(std::string_view json);

std::string encode_response_home(const ResponseHome& h);
std::optional<ResponseHome> decode_response_home(std::string_view json);

std::string encode_key_record(const KeyRecord& k);
std::optional<KeyRecord> decode_key_record(std::string_view json);

}  // namespace core
