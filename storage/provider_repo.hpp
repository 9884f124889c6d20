#pragma once
// The providers table. Deleted providers (deleted_at set) are invisible: get / update / remove /
// secret on them answer errc::not_found.
#include "core/domain.hpp"
#include "core/result.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

namespace storage {

class Db;

class ProviderRepo {
 public:
  explicit ProviderRepo(Db& db) : db_(db) {}

  // Duplicate live name -> conflict "a provider named 'X' already exists" (param "name").
  // Empty api_key_enc / api_key_preview are stored as "no key".
  boost::asio::awaitable<core::Result<core::Provider>> create(core::NewProvider provider);
  boost::asio::awaitable<core::Result<std::vector<core::Provider>>> list();  // by created_at
  boost::asio::awaitable<core::Result<core::Provider>> get(std::string id);
  // Only the fields set in the patch change (one statement); updated_at is bumped. Setting
  // api_key_enc / api_key_preview to "" clears them; rpm / rpd set to null remove the limit.
  // Duplicate name -> conflict. An rpm / rpd <= 0 -> invalid_request (also in create).
  boost::asio::awaitable<core::Result<core::Provider>> update(std::string id, core::ProviderPatch patch);
  // Soft delete (deleted_at = now(), is_active = false). When live models route to the provider:
  // !force -> conflict "provider is used by N model(s)"; force -> a model with a route elsewhere
  // loses this provider's routes, one without is deactivated. Returns the names of the models that
  // used it, so the caller can refresh their routes.
  boost::asio::awaitable<core::Result<std::vector<std::string>>> remove(std::string id, bool force);
  // The sealed credentials of an active, live provider. Inactive -> not_found.
  struct Sealed {
    std::string api_key_enc;        // empty: no key
    std::string extra_headers_enc;  // empty: no extra headers
  };
  boost::asio::awaitable<core::Result<Sealed>> secret(std::string id);

 private:
  Db& db_;
};

}  // namespace storage
