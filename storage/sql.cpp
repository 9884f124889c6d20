#include "storage/sql.hpp"

#include "core/ascii.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>

namespace storage::detail {

std::string json_array(const std::vector<std::string>& v) {
  boost::json::array a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(boost::json::string_view(s.data(), s.size()));
  return boost::json::serialize(a);
}

std::vector<std::string> text_array(const pqxx::field& json) {
  std::vector<std::string> out;
  if (json.is_null()) return out;
  boost::json::error_code ec;
  const auto v = boost::json::parse(json.c_str(), ec);
  if (ec || !v.is_array()) return out;
  for (const auto& e : v.as_array())
    if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

std::optional<std::string> numeric_param(const std::optional<double>& v) {
  if (!v) return std::nullopt;
  return fmt::format("{}", *v);  // shortest round-trip form
}

core::Pricing pricing_from(const pqxx::row& r, int at) {
  return core::Pricing{optional_double(r[at]), optional_double(r[at + 1]), optional_double(r[at + 2])};
}

namespace {

// Writes `n` as exactly `width` decimal digits (n < 10^width).
char* put_digits(char* p, unsigned n, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + n % 10);
    n /= 10;
  }
  return p + width;
}

}  // namespace

void append_rfc3339_us(std::string& out, std::int64_t us) {
  using namespace std::chrono;
  const sys_time<microseconds> t{microseconds(us)};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const auto tod = static_cast<std::uint64_t>((t - day).count());  // µs into the day
  char buf[32];
  char* p = put_digits(buf, static_cast<unsigned>(std::clamp(static_cast<int>(ymd.year()), 0, 9999)), 4);
  *p++ = '-';
  p = put_digits(p, static_cast<unsigned>(ymd.month()), 2);
  *p++ = '-';
  p = put_digits(p, static_cast<unsigned>(ymd.day()), 2);
  *p++ = 'T';
  p = put_digits(p, static_cast<unsigned>(tod / 3'600'000'000), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<unsigned>(tod / 60'000'000 % 60), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<unsigned>(tod / 1'000'000 % 60), 2);
  *p++ = '.';
  p = put_digits(p, static_cast<unsigned>(tod % 1'000'000), 6);
  *p++ = 'Z';
  out.append(buf, p);
}

std::string rfc3339_us(std::int64_t us) {
  std::string out;
  append_rfc3339_us(out, us);
  return out;
}

std::string iso_date(std::chrono::sys_days day) {
  const std::chrono::year_month_day ymd{day};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()));
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here ? s[i] != '-' : core::hex_value(s[i]) < 0) return false;
  }
  return true;
}

}  // namespace storage::detail
