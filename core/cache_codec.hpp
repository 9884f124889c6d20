#pragma once
// Values <-> the JSON stored in Redis (route hash, key records). Contains no secrets.
#include "core/domain.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace core {

std::string encode_route(const Route& r);
std::optional<Route> decode_route(std::string_view json);

std::string encode_key_record(const KeyRecord& k);
std::optional<KeyRecord> decode_key_record(std::string_view json);

}  // namespace core
