#include "core/timestamp.hpp"

#include <catch2/catch.hpp>

TEST_CASE("timestamps: RFC 3339, dates, Unix seconds") {
  using core::parse_timestamp_us;
  CHECK(parse_timestamp_us("1970-01-01") == 0);
  CHECK(parse_timestamp_us("2026-11-24") == std::int64_t(1795478400) * 1000000);
  CHECK(parse_timestamp_us("2026-11-24T10:00:00Z") == (std::int64_t(1795478400) + 36000) * 1000000);
  CHECK(parse_timestamp_us("2026-11-24T10:00:00.5Z") == (std::int64_t(1795478400) + 36000) * 1000000 + 500000);
  CHECK(parse_timestamp_us("2026-11-24T12:00:00+02:00") == (std::int64_t(1795478400) + 36000) * 1000000);
  CHECK(parse_timestamp_us("2026-11-24T10:00:00") == (std::int64_t(1795478400) + 36000) * 1000000);
  CHECK(parse_timestamp_us("1795478400") == std::int64_t(1795478400) * 1000000);
  CHECK(parse_timestamp_us("2000-02-29") == std::int64_t(951782400) * 1000000);
  for (const char* bad : {"", "yesterday", "2026-13-01", "2026-11-24T25:00:00Z", "2026-11-24Tx", "2026-11-24T10:00:00Zjunk",
                          "-5", "2026-11-24T10:00:00+2"})
    CHECK_FALSE(parse_timestamp_us(bad));
}
