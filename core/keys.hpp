#pragma once
// User API keys: format, hashing, display, comparison. Only the SHA-256 of a key is ever stored.
#include <string>
#include <string_view>

namespace core {

// "sk-" + a random (CSPRNG) UUIDv4, e.g. sk-3f1c9a4e-8b2d-4c6f-9a1e-2b3c4d5e6f70
std::string generate_user_key();
// Random UUIDv4 text (CSPRNG).
std::string generate_uuid_v4();
// UUIDv4-shaped id for requests: unique, not secret. A per-thread generator seeded once from the
// CSPRNG, so the hot path makes no RAND_bytes call (OpenSSL's fork check costs a getpid per call).
std::string generate_request_id();
bool is_uuid(std::string_view text) noexcept;
// A request id we accept from a client or provider, echo and log: 1-128 bytes of [A-Za-z0-9._:-].
bool valid_request_id(std::string_view id) noexcept;

// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view data);

// First characters of a user key kept for display ("sk-3f1c9a4e").
std::string key_prefix(std::string_view key);

// "sk-p...wxyz": enough to recognise a secret, never enough to use it. Short secrets -> "****".
std::string mask_secret(std::string_view secret);

// Compares without early exit, so timing does not reveal how much of a secret matched.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// Extracts the token of "Bearer <token>" (case-insensitive scheme); empty when absent.
std::string_view bearer_token(std::string_view authorization) noexcept;

}  // namespace core
