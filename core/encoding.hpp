#pragma once
// Hex and base64 for keys and ciphertexts.
#include <optional>
#include <string>
#include <string_view>

namespace core {

std::string hex_encode(std::string_view bytes);
// Writes the 2 * bytes.size() lowercase hex digits of `bytes` at `out`; returns the end.
char* hex_encode_to(char* out, std::string_view bytes) noexcept;
std::optional<std::string> hex_decode(std::string_view hex);
std::string base64_encode(std::string_view bytes);
// Accepts the standard and the url-safe alphabet, with or without padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace core
