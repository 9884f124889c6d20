#pragma once
// Route <-> the JSON stored in the Redis route hash. Contains no secrets.
#include "core/domain.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace core {

std::string encode_route(const Route& r);
std::optional<Route> decode_route(std::string_view json);

}  // namespace core
