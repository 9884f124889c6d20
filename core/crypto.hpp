#pragma once
// AES-256-GCM for provider API keys at rest. Format: base64(nonce[12] || ciphertext || tag[16]).
#include "core/result.hpp"

#include <string>
#include <string_view>

namespace core {

// key: 32 raw bytes. A fresh random 96-bit nonce per call.
std::string seal(std::string_view key, std::string_view plaintext);
// errc::internal on a wrong key, a tampered or truncated value.
Result<std::string> open(std::string_view key, std::string_view sealed_b64);

}  // namespace core
