#include "core/json_write.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

using namespace core::json_write;
namespace json = boost::json;

namespace {

std::string str(std::string_view s) {
  std::string out;
  append_string(out, s);
  return out;
}

std::string dbl(double v) {
  std::string out;
  append_double(out, v);
  return out;
}

}  // namespace

TEST_CASE("json_write: strings are escaped as boost::json writes them") {
  CHECK(str("") == R"("")");
  CHECK(str("plain") == R"("plain")");
  CHECK(str(R"(a"b\c)") == R"("a\"b\\c")");
  CHECK(str("\b\f\n\r\t") == R"("\b\f\n\r\t")");
  CHECK(str(std::string_view("\0\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(str("\x7f") == "\"\x7f\"");
  CHECK(str("h\xc3\xa9llo \xe2\x82\xac") == "\"h\xc3\xa9llo \xe2\x82\xac\"");  // UTF-8 as is

  // Every byte value, alone and in runs, against Boost.JSON (valid UTF-8 only: it checks that).
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) s.push_back(static_cast<char>(rng() % 0x80));
    INFO(s);
    CHECK(str(s) == json::serialize(json::string(s)));
    CHECK(json::parse(str(s)).as_string() == s);
  }
}

TEST_CASE("json_write: an escape at any position of long runs is found (the 8-byte word test)") {
  // A byte-at-a-time reference; bytes >= 0x80 (UTF-8, or not) are copied as they are.
  const auto reference = [](std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += ch;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\b') {
        out += "\\b";
      } else if (c == '\f') {
        out += "\\f";
      } else if (c < 0x20) {
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      } else {
        out += ch;
      }
    }
    return out + "\"";
  };
  const std::string specials("\"\\\n\x01\x1f\0", 6);
  const std::string fillers("a \x7f\x80\xff\xc3\x21\x5d\x5b\x1f\x20", 11);
  std::mt19937 rng(3);
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t at = 0; at <= len; ++at) {
      std::string s;
      for (std::size_t k = 0; k < len; ++k) s += fillers[rng() % 9];  // no control bytes
      if (at < len) s[at] = specials[rng() % specials.size()];
      INFO(len << " " << at);
      CHECK(str(s) == reference(s));
    }
  }
  for (int i = 0; i < 3000; ++i) {  // any bytes at all
    std::string s;
    const int n = static_cast<int>(rng() % 48);
    for (int k = 0; k < n; ++k) s.push_back(static_cast<char>(rng() % 256));
    CHECK(str(s) == reference(s));
  }
}

TEST_CASE("json_write: integers and doubles parse back to the same value") {
  std::string out;
  append_int(out, 0);
  out.push_back(',');
  append_int(out, -42);
  out.push_back(',');
  append_int(out, std::numeric_limits<std::int64_t>::max());
  CHECK(out == "0,-42,9223372036854775807");

  CHECK(dbl(0.0) == "0");
  CHECK(dbl(1.5) == "1.5");
  CHECK(dbl(std::nan("")) == "null");
  CHECK(dbl(std::numeric_limits<double>::infinity()) == "null");
  CHECK(dbl(-std::numeric_limits<double>::infinity()) == "null");
  for (double v : {0.1, 1e-7, 123456.789, 2.5e300, -3.75, 0.000123, 17.0}) {
    INFO(v);
    CHECK(json::parse(dbl(v)).to_number<double>() == v);
  }
}

TEST_CASE("json_write: member keys, with and without a lead, short and long") {
  std::string out;
  append_key(out, '{', "a");
  append_int(out, 1);
  append_key(out, ',', "status");
  append_int(out, 2);
  const std::string long_key(100, 'k');
  append_key(out, ',', long_key);
  append_int(out, 3);
  out.push_back('}');
  CHECK(out == "{\"a\":1,\"status\":2,\"" + long_key + "\":3}");
  std::string bare;
  append_key(bare, '\0', "x");
  CHECK(bare == "\"x\":");
}

TEST_CASE("json_write: a member in one append is what key then value writes") {
  // append_member builds the member in a stack buffer when the value needs no escape and it all
  // fits; otherwise it falls back. Both ways must give append_key + append_string / append_int.
  std::mt19937 rng(7);
  const std::string alphabet = "abcXYZ019 -_/.:\xc3\xa9\"\\\n\t\x01";
  for (int round = 0; round < 20000; ++round) {
    const char lead = "\0,{"[rng() % 3];
    std::string key(rng() % 3 == 0 ? rng() % 260 : rng() % 24, 'k');
    std::string value;
    const std::size_t len = rng() % 4 == 0 ? rng() % 300 : rng() % 40;
    const bool plain = rng() % 2;  // half the values need no escape at all
    for (std::size_t i = 0; i < len; ++i) value.push_back(alphabet[rng() % (plain ? 17 : alphabet.size())]);
    std::string want, got;
    append_key(want, lead, key);
    append_string(want, value);
    append_member(got, lead, key, value);
    INFO(round);
    REQUIRE(got == want);

    const std::int64_t n = round % 3 == 0   ? std::numeric_limits<std::int64_t>::min() + round
                           : round % 3 == 1 ? std::numeric_limits<std::int64_t>::max() - round
                                            : static_cast<std::int64_t>(rng()) - (1 << 30);
    std::string want_n, got_n;
    append_key(want_n, lead, key);
    append_int(want_n, n);
    append_member(got_n, lead, key, n);
    REQUIRE(got_n == want_n);
  }
}

TEST_CASE("json_write: fixed three decimals, signs and extremes") {
  const auto fixed3 = [](std::int64_t v) {
    std::string out;
    append_fixed3(out, v);
    return out;
  };
  CHECK(fixed3(0) == "0.000");
  CHECK(fixed3(2402) == "2.402");
  CHECK(fixed3(5) == "0.005");
  CHECK(fixed3(-5) == "-0.005");
  CHECK(fixed3(-1234567) == "-1234.567");
  CHECK(fixed3(std::numeric_limits<std::int64_t>::max()) == "9223372036854775.807");
  CHECK(fixed3(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775.808");
}
