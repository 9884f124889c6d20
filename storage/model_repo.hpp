#pragma once
// The models and model_routes tables. A model has one or more routes (provider + upstream name +
// priority + weight); the columns models.provider_id / provider_model_name mirror its first route
// (lowest priority, then oldest), updated in the same transaction as every route change.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace storage {

class Db;

class ModelRepo {
 public:
  explicit ModelRepo(Db& db) : db_(db) {}

  // Creates the model with one route. Unknown or deleted provider -> invalid_request
  // "provider_id does not exist" (param "provider_id"); duplicate live name -> conflict ("name").
  boost::asio::awaitable<core::Result<core::Model>> create(core::NewModel model);
  boost::asio::awaitable<core::Result<std::vector<core::Model>>> list();  // by created_at, with routes
  boost::asio::awaitable<core::Result<core::Model>> get(std::string id);
  // Partial update in one transaction; provider_id / provider_model_name change the first route.
  // Returns the model and its name before the update.
  boost::asio::awaitable<core::Result<std::pair<core::Model, std::string>>> update(std::string id,
                                                                                   core::ModelPatch patch);
  // Soft delete of the model and its routes. Returns the deleted model's name.
  boost::asio::awaitable<core::Result<std::string>> remove(std::string id);

  // Routes of a live model. add: unknown provider -> invalid_request (param "provider_id").
  boost::asio::awaitable<core::Result<core::Model>> add_route(std::string model_id, core::NewRoute route);
  boost::asio::awaitable<core::Result<core::Model>> update_route(std::string model_id, std::string route_id,
                                                                 core::RoutePatch patch);
  // The last route of a model cannot go (conflict): delete the model instead.
  boost::asio::awaitable<core::Result<core::Model>> remove_route(std::string model_id, std::string route_id);

 private:
  Db& db_;
};

}  // namespace storage
