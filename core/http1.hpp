#pragma once
// HTTP/1.1 message heads (RFC 9112), sans-io: bytes in, a parsed head or a precise error out.
//
// Why our own and not Beast's parser: Beast 1.81 reads an interim 1xx head as a complete
// response, maps unknown status codes to 0, ignores a Transfer-Encoding whose last coding is not
// `chunked` (request smuggling), and grows its buffer without bound on chunk extensions. Here every
// framing decision is an explicit, unit-tested and fuzzed function, and no input can make it hold
// more than the caller's buffer.
//
// Strict where ambiguity could let two parsers disagree about where a message ends (requests):
// CRLF line endings only, no obs-fold, no whitespace before ':', one Host, at most one
// Content-Length, Transfer-Encoding only as a list ending in a single `chunked`.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace core::http1 {

struct Field {
  std::string_view name;
  std::string_view value;  // OWS trimmed
  // The whole line as received, CRLF included (parsed heads only; empty otherwise): a relay
  // forwards a run of adjacent lines with one copy instead of rebuilding each.
  std::string_view line = {};
};

// How the body of a message is delimited.
enum class Framing : std::uint8_t {
  none,         // no body
  length,       // Content-Length bytes
  chunked,      // Transfer-Encoding: chunked
  until_close,  // response only: the body ends when the connection closes
};

enum class HeadError : std::uint8_t {
  none,
  malformed,              // syntax -> 400 (request) / 502 (response)
  head_too_large,         // over Limits::max_head_bytes -> 431 / 502
  too_many_fields,        // over Limits::max_fields -> 431 / 502
  version_not_supported,  // HTTP/2.0 etc. -> 505
  bad_framing,            // CL/TE conflicts, bad values, TE not ending in chunked -> 400 / 502
  unsupported_coding,     // a transfer coding other than chunked -> 501
  missing_host,           // HTTP/1.1 without exactly one Host -> 400
};

struct Limits {
  std::size_t max_head_bytes = 64 * 1024;  // start line + every field + the blank line
  std::size_t max_fields = 128;
};

// Where a head ends. `complete`: `size` bytes (through the blank line) form the head. `incomplete`:
// read more; nothing in `buf` so far exceeds the limit. `too_large`: the head cannot fit the limit.
struct HeadScan {
  enum class State : std::uint8_t { incomplete, complete, too_large } state = State::incomplete;
  std::size_t size = 0;
};
// `from` is where the previous scan of the same (grown) buffer stopped, so trickled input is not
// rescanned from the start. Leading empty lines (CRLF) before a request line are skipped as RFC 9112
// 2.2 allows; they count towards the limit.
HeadScan scan_head(std::string_view buf, std::size_t max_head_bytes, std::size_t& from) noexcept;

// Fields that every head shares.
struct HeadCommon {
  int version_minor = 1;      // HTTP/1.<minor>: 0 or 1
  std::vector<Field> fields;  // in order, duplicates kept
  Framing framing = Framing::none;
  std::uint64_t content_length = 0;  // when framing == length
  bool keep_alive = true;            // after this message, may the connection carry another?

  // First field with this name (ASCII case-insensitive); empty when absent.
  std::string_view get(std::string_view name) const noexcept;
  bool has(std::string_view name) const noexcept;
};

struct RequestHead : HeadCommon {
  std::string_view method;
  std::string_view target;  // origin-form: starts with '/'
  bool expect_continue = false;

  std::string_view path() const noexcept;   // target without the query
  std::string_view query() const noexcept;  // after '?', empty when none
};

struct ResponseHead : HeadCommon {
  unsigned status = 0;      // 100..999
  std::string_view reason;  // as sent, possibly empty
  bool interim() const noexcept { return status >= 100 && status < 200; }
};

// Parses `head` (exactly the bytes scan_head reported, blank line included) into `out`, whose
// views point into `head`. `out.fields` keeps its capacity across calls (no allocation per request
// once warm).
HeadError parse_request_head(std::string_view head, const Limits& limits, RequestHead& out);

// `request_method` decides framing for HEAD; interim (1xx) heads have Framing::none.
HeadError parse_response_head(std::string_view head, std::string_view request_method, const Limits& limits,
                              ResponseHead& out);

// Helpers shared with the renderers and tests.
bool is_token(std::string_view s) noexcept;
bool is_field_value(std::string_view s) noexcept;  // VCHAR / obs-text / SP / HTAB
// Does the comma-separated list (e.g. Connection) contain `token`, ASCII case-insensitively?
bool list_has_token(std::string_view list, std::string_view token) noexcept;
// The standard reason phrase for our own responses ("" for unknown codes).
std::string_view reason_phrase(unsigned status) noexcept;

}  // namespace core::http1
