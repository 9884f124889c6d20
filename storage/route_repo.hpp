#pragma once
// Read side of the hot path: what a public model name forwards to. A route is usable only while
// its model and its provider are both active and not deleted; a model with no usable route does
// not route at all.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

namespace storage {

class Db;

class RouteRepo {
 public:
  explicit RouteRepo(Db& db) : db_(db) {}

  // nullopt when there is no usable route for this public name.
  boost::asio::awaitable<core::Result<std::optional<core::ModelRoutes>>> find(std::string model_name);
  // Every routable model (to warm the route cache), by model name.
  boost::asio::awaitable<core::Result<std::vector<core::ModelRoutes>>> all();

 private:
  Db& db_;
};

}  // namespace storage
