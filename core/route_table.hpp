#pragma once
// Method + path -> handler, with the 404 / 405(+Allow) distinction. Pure: no sockets, no Beast.
//
// Patterns are literal segments and "{name}" captures one segment; a final "{name*}" captures the
// rest of the path (model names such as "openai/gpt-4o" contain slashes). Captured values are
// percent-decoded.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace core {

struct PathParams {
  std::vector<std::pair<std::string, std::string>> items;
  std::string_view get(std::string_view name) const noexcept {
    for (const auto& [k, v] : items)
      if (k == name) return v;
    return {};
  }
};

namespace detail {
struct Pattern {
  std::vector<std::string> segments;  // "{x}" capture, "{x*}" rest capture, else literal
  // The literal start ("/v1/chat/completions", "/admin/keys/"): a path that does not begin with
  // it cannot match, which one compare tells (a request is tried against every route before its own).
  std::string literal_prefix;
  bool all_literal = true;  // no captures: the path matches exactly when it equals literal_prefix
};
Pattern compile(std::string_view pattern);
// Returns true and fills params when path matches.
bool match(const Pattern& p, std::string_view path, PathParams& params);
// False when the path cannot match: most routes are ruled out here, inline, by their literal
// start, without the call and the PathParams that match() needs.
inline bool may_match(const Pattern& p, std::string_view path) noexcept {
  return p.all_literal ? path == p.literal_prefix : path.starts_with(p.literal_prefix);
}
}  // namespace detail

template <class Handler>
class RouteTable {
 public:
  enum class Outcome { found, not_found, method_not_allowed };
  struct Match {
    Outcome outcome = Outcome::not_found;
    const Handler* handler = nullptr;
    PathParams params;
    std::string allow;  // "GET, POST" for 405
  };

  void add(std::string method, std::string_view pattern, Handler h) {
    routes_.push_back({std::move(method), detail::compile(pattern), std::move(h)});
  }

  Match match(std::string_view method, std::string_view path) const {
    Match m;
    for (const auto& r : routes_) {
      if (!detail::may_match(r.pattern, path)) continue;
      PathParams params;
      if (!detail::match(r.pattern, path, params)) continue;
      if (r.method == method || (method == "HEAD" && r.method == "GET" && !has(path, "HEAD"))) {
        m.outcome = Outcome::found;
        m.handler = &r.handler;
        m.params = std::move(params);
        m.allow.clear();
        return m;
      }
      if (m.allow.find(r.method) == std::string::npos) {
        if (!m.allow.empty()) m.allow += ", ";
        m.allow += r.method;
      }
      m.outcome = Outcome::method_not_allowed;
    }
    return m;
  }

 private:
  bool has(std::string_view path, std::string_view method) const {
    PathParams ignored;
    for (const auto& r : routes_)
      if (r.method == method && detail::may_match(r.pattern, path) && detail::match(r.pattern, path, ignored))
        return true;
    return false;
  }

  struct Route {
    std::string method;
    detail::Pattern pattern;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace core
