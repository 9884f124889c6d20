#include "core/http1.hpp"

#include "core/ascii.hpp"
#include "core/swar.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace core::http1 {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::size_t kMaxLengthDigits = 15;  // < 2^50: more than any body we would accept

constexpr std::array<bool, 256> make_tchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto kTchar = make_tchar();

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Leading empty lines before a start line (RFC 9112 2.2).
std::size_t skip_empty_lines(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i + 1 < s.size() && s[i] == '\r' && s[i + 1] == '\n') i += 2;
  return i;
}

// Splits off one CRLF-terminated line; false when there is none.
bool next_line(std::string_view& rest, std::string_view& line) noexcept {
  const auto eol = rest.find(kCrlf);
  if (eol == std::string_view::npos) return false;
  line = rest.substr(0, eol);
  rest.remove_prefix(eol + 2);
  return true;
}

bool parse_digits(std::string_view s, std::size_t max_digits, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > max_digits) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  out = v;
  return true;
}

// "HTTP/1.1" -> 1, "HTTP/1.0" -> 0, "HTTP/d.d" otherwise -> -2 (unsupported), garbage -> -1.
int parse_version(std::string_view v) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
  const char major = v[5], minor = v[7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9') return -1;
  if (major == '1' && (minor == '0' || minor == '1')) return minor - '0';
  return -2;
}

// Bytes a field value may hold: VCHAR, obs-text (>= 0x80), SP and HTAB.
constexpr std::array<bool, 256> make_value_char() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x100; ++c) t[c] = c != 0x7f;
  t['\t'] = true;
  return t;
}
constexpr auto kValueChar = make_value_char();

// Whether all 8 bytes of w are value bytes other than HTAB: none below 0x20, none 0x7f. A word
// with a HTAB fails and is judged byte by byte, like the word with the CR.
constexpr bool plain_value_word(std::uint64_t w) noexcept {
  return !(swar::has_byte_below(w, 0x20) | swar::has_byte(w, 0x7f));  // | : no branches
}

// Field lines up to (not including) the blank line; checks syntax and the count. One pass per
// line: the name's token bytes up to the colon, then the value's bytes up to CRLF. A byte that is
// neither ends the run and is judged there (a CR must start the CRLF; anything else is malformed),
// which decides exactly what "split at CRLF, find the colon, check name and value" decided.
HeadError parse_fields(std::string_view rest, const Limits& limits, std::vector<Field>& out) {
  out.clear();
  const char* p = rest.data();
  const char* const end = p + rest.size();
  for (;;) {
    if (p == end) return HeadError::malformed;  // no blank line: not a whole head
    if (*p == '\r') {
      if (end - p >= 2 && p[1] == '\n') return HeadError::none;  // the blank line ends the head
      return HeadError::malformed;
    }
    if (is_ows(*p)) return HeadError::malformed;  // obs-fold
    const char* const name = p;
    while (p != end && kTchar[static_cast<unsigned char>(*p)]) ++p;
    if (p == end) return HeadError::malformed;  // no CRLF
    if (*p != ':' || p == name) {
      // Not a token up to a colon. The line is malformed whatever follows, unless it has no CRLF
      // at all, which is malformed too: one answer.
      return HeadError::malformed;
    }
    const std::string_view field_name(name, static_cast<std::size_t>(p - name));
    ++p;  // the colon
    const char* const value = p;
    // Eight bytes at a time first (values are most of a head's bytes: tokens, dates, types).
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if (!plain_value_word(w)) break;
      p += 8;
    }
    while (p != end && kValueChar[static_cast<unsigned char>(*p)]) ++p;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return HeadError::malformed;  // a CTL, or no CRLF
    const std::string_view field_value = trim_ows(std::string_view(value, static_cast<std::size_t>(p - value)));
    p += 2;
    if (out.size() >= limits.max_fields) return HeadError::too_many_fields;
    out.push_back({field_name, field_value, std::string_view(name, static_cast<std::size_t>(p - name))});
  }
}

// Each element of a comma-separated list (empty elements skipped, as RFC 9110 5.6.1 allows).
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Transfer-Encoding over all its fields. `chunked_last`: the final coding is chunked.
struct Codings {
  bool present = false;
  bool chunked_last = false;
  int chunked_count = 0;
  int other_count = 0;
};

Codings transfer_codings(const std::vector<Field>& fields) {
  Codings c;
  for (const auto& f : fields) {
    if (!iequals(f.name, "transfer-encoding")) continue;
    c.present = true;
    for_each_element(f.value, [&](std::string_view element) {
      const std::string_view coding = trim_ows(element.substr(0, element.find(';')));
      c.chunked_last = iequals(coding, "chunked");
      if (c.chunked_last)
        ++c.chunked_count;
      else
        ++c.other_count;
    });
  }
  return c;
}

// Content-Length over all its fields: `count` fields; `same` when every value (also within
// comma lists) is one valid number, stored in `value`.
struct Lengths {
  int count = 0;   // fields
  int values = 0;  // numbers over all fields
  bool valid = true;
  bool same = true;
  std::uint64_t value = 0;
};

Lengths content_lengths(const std::vector<Field>& fields) {
  Lengths l;
  bool first = true;
  for (const auto& f : fields) {
    if (!iequals(f.name, "content-length")) continue;
    ++l.count;
    bool any = false;
    for_each_element(f.value, [&](std::string_view element) {
      any = true;
      ++l.values;
      std::uint64_t v = 0;
      if (!parse_digits(element, kMaxLengthDigits, v)) {
        l.valid = false;
        return;
      }
      if (!first && v != l.value) l.same = false;
      l.value = v;
      first = false;
    });
    if (!any) l.valid = false;
  }
  return l;
}

bool connection_has(const HeadCommon& h, std::string_view token) {
  for (const auto& f : h.fields)
    if (iequals(f.name, "connection") && list_has_token(f.value, token)) return true;
  return false;
}

void decide_keep_alive(HeadCommon& h) {
  if (connection_has(h, "close"))
    h.keep_alive = false;
  else
    h.keep_alive = h.version_minor == 1 || connection_has(h, "keep-alive");
}

}  // namespace

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool is_field_value(std::string_view s) noexcept {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 ? c != '\t' : c == 0x7f) return false;
  }
  return true;
}

bool list_has_token(std::string_view list, std::string_view token) noexcept {
  bool found = false;
  for_each_element(list, [&](std::string_view e) { found = found || iequals(e, token); });
  return found;
}

HeadScan scan_head(std::string_view buf, std::size_t max_head_bytes, std::size_t& from) noexcept {
  const std::size_t start = skip_empty_lines(buf);
  HeadScan r;
  std::size_t search = from > start + 3 ? from - 3 : start;
  const auto end = buf.find("\r\n\r\n", search);
  if (end != std::string_view::npos) {
    r.size = end + 4;
    r.state = r.size > max_head_bytes ? HeadScan::State::too_large : HeadScan::State::complete;
    return r;
  }
  from = buf.size();
  if (buf.size() >= max_head_bytes) r.state = HeadScan::State::too_large;
  return r;
}

std::string_view HeadCommon::get(std::string_view name) const noexcept {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return f.value;
  return {};
}

bool HeadCommon::has(std::string_view name) const noexcept {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return true;
  return false;
}

std::string_view RequestHead::path() const noexcept {
  return target.substr(0, target.find('?'));
}

std::string_view RequestHead::query() const noexcept {
  const auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

HeadError parse_request_head(std::string_view head, const Limits& limits, RequestHead& out) {
  if (head.size() > limits.max_head_bytes) return HeadError::head_too_large;
  std::string_view rest = head.substr(skip_empty_lines(head));
  std::string_view line;
  if (!next_line(rest, line)) return HeadError::malformed;

  // method SP request-target SP HTTP-version, single spaces.
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return HeadError::malformed;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const int minor = parse_version(line.substr(sp2 + 1));
  if (!is_token(out.method) || out.target.empty() || out.target.front() != '/') return HeadError::malformed;
  for (char ch : out.target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return HeadError::malformed;
  }
  if (minor == -2) return HeadError::version_not_supported;
  if (minor < 0) return HeadError::malformed;
  out.version_minor = minor;

  if (auto e = parse_fields(rest, limits, out.fields); e != HeadError::none) return e;

  int hosts = 0;
  for (const auto& f : out.fields) hosts += iequals(f.name, "host") ? 1 : 0;
  if (hosts > 1 || (minor == 1 && hosts != 1)) return HeadError::missing_host;

  // RFC 9112 6.3: the framing must be unambiguous, or we would read a different body than the
  // next hop (a smuggled request). Anything unusual is refused, and the connection closed.
  const Codings te = transfer_codings(out.fields);
  const Lengths cl = content_lengths(out.fields);
  out.framing = Framing::none;
  out.content_length = 0;
  if (te.present) {
    if (minor == 0 || cl.count > 0 || !te.chunked_last || te.chunked_count > 1) return HeadError::bad_framing;
    if (te.other_count > 0) return HeadError::unsupported_coding;
    out.framing = Framing::chunked;
  } else if (cl.count > 0) {
    if (cl.values > 1 || !cl.valid) return HeadError::bad_framing;
    out.content_length = cl.value;
    out.framing = cl.value > 0 ? Framing::length : Framing::none;
  }
  decide_keep_alive(out);
  out.expect_continue = minor == 1 && iequals(out.get("expect"), "100-continue");
  return HeadError::none;
}

HeadError parse_response_head(std::string_view head, std::string_view request_method, const Limits& limits,
                              ResponseHead& out) {
  if (head.size() > limits.max_head_bytes) return HeadError::head_too_large;
  std::string_view rest = head;
  std::string_view line;
  if (!next_line(rest, line)) return HeadError::malformed;

  // HTTP-version SP 3DIGIT SP [reason]; a missing SP before an empty reason is tolerated.
  if (line.size() < 12 || line[8] != ' ') return HeadError::malformed;
  const int minor = parse_version(line.substr(0, 8));
  if (minor < 0) return HeadError::malformed;
  std::uint64_t status = 0;
  if (!parse_digits(line.substr(9, 3), 3, status) || status < 100) return HeadError::malformed;
  if (line.size() > 12 && line[12] != ' ') return HeadError::malformed;
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
  if (!is_field_value(out.reason)) return HeadError::malformed;
  // Room for a provider's head at once (they send 10-25 fields): one allocation instead of the
  // five a growing vector makes.
  out.fields.reserve(32);
  out.status = static_cast<unsigned>(status);
  out.version_minor = minor;

  if (auto e = parse_fields(rest, limits, out.fields); e != HeadError::none) return e;

  out.framing = Framing::none;
  out.content_length = 0;
  decide_keep_alive(out);
  const bool bodiless = out.interim() || out.status == 204 || out.status == 304 || request_method == "HEAD";
  const Codings te = transfer_codings(out.fields);
  const Lengths cl = content_lengths(out.fields);
  if (bodiless) return HeadError::none;
  if (te.present) {
    // Only plain chunked: another transfer coding would reach the client undecoded and unlabelled.
    if (!te.chunked_last || te.chunked_count > 1) return HeadError::bad_framing;
    if (te.other_count > 0) return HeadError::unsupported_coding;
    out.framing = Framing::chunked;
    if (cl.count > 0) out.keep_alive = false;  // RFC 9112 6.3: such a sender must close afterwards
  } else if (cl.count > 0) {
    if (!cl.valid || !cl.same) return HeadError::bad_framing;
    out.content_length = cl.value;
    out.framing = cl.value > 0 ? Framing::length : Framing::none;
  } else {
    out.framing = Framing::until_close;
    out.keep_alive = false;
  }
  return HeadError::none;
}

std::string_view reason_phrase(unsigned status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Overloaded";
    default: return "";
  }
}

}  // namespace core::http1
