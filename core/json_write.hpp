#pragma once
// Appending JSON values to a string, without building a DOM: for hot paths that write many small,
// fixed-shape objects (the request log's PostgreSQL rows). Output is what boost::json::serialize
// would write for the same value (tested), except that doubles use the shortest round-trip form.
#include <cstdint>
#include <string>
#include <string_view>

namespace core::json_write {

// `s` quoted and escaped: `"` `\` and control characters; other bytes (UTF-8) as they are.
void append_string(std::string& out, std::string_view s);

void append_int(std::string& out, std::int64_t v);

// A member's start: `lead` (',' or '{'; '\0' for none), then "key": with the key as given (callers
// pass names that need no escaping). One append: rows and lines write some 20 of these each.
void append_key(std::string& out, char lead, std::string_view key);

// A whole member, `lead"key":"value"` / `lead"key":123`, as append_key then append_string /
// append_int would write it, but in one append when it fits a small buffer and the value needs no
// escape (almost always): a log line or row is some 20 members, and each append is a call.
void append_member(std::string& out, char lead, std::string_view key, std::string_view value);
void append_member(std::string& out, char lead, std::string_view key, std::int64_t value);

// `thousandths` / 1000 with exactly 3 decimals (2402 -> 2.402, -5 -> -0.005): durations in ms
// from whole microseconds, without a double's shortest-form search.
void append_fixed3(std::string& out, std::int64_t thousandths);

// A finite double in its shortest form that parses back to the same value; NaN and infinities
// (which JSON cannot hold) become null.
void append_double(std::string& out, double v);

}  // namespace core::json_write
