#pragma once
// The models table (public model names and the provider that serves them). Deleted models are
// invisible: get / update / remove on them answer errc::not_found.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <utility>
#include <vector>

namespace storage {

class Db;

class ModelRepo {
 public:
  explicit ModelRepo(Db& db) : db_(db) {}

  // Unknown or deleted provider -> invalid_request "provider_id does not exist" (param
  // "provider_id"); duplicate live name -> conflict "a model named 'X' already exists" ("name").
  boost::asio::awaitable<core::Result<core::Model>> create(core::NewModel model);
  boost::asio::awaitable<core::Result<std::vector<core::Model>>> list();  // by created_at
  boost::asio::awaitable<core::Result<core::Model>> get(std::string id);
  // Partial update in one transaction; same errors as create. Returns the model and its name
  // before the update, so the caller can drop the old route.
  boost::asio::awaitable<core::Result<std::pair<core::Model, std::string>>> update(std::string id,
                                                                                   core::ModelPatch patch);
  // Soft delete (deleted_at = now(), is_active = false). Returns the deleted model's name.
  boost::asio::awaitable<core::Result<std::string>> remove(std::string id);

 private:
  Db& db_;
};

}  // namespace storage
