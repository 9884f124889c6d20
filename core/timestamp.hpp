#pragma once
// Timestamps in query parameters (admin API: from / to): RFC 3339 ("2026-11-24T10:00:00Z",
// fractions and ±hh:mm offsets allowed), a date ("2026-11-24", midnight UTC), or Unix seconds.
#include <cstdint>
#include <optional>
#include <string_view>

namespace core {

// Microseconds since the Unix epoch; nullopt when the text is none of the forms above.
std::optional<std::int64_t> parse_timestamp_us(std::string_view text) noexcept;

}  // namespace core
