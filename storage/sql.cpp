#include "storage/sql.hpp"

#include <boost/json.hpp>

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

}  // namespace storage::detail
