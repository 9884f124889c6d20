#pragma once
// The schema migrations compiled into the binary from storage/migrations/V*.sql (see
// embed_migrations.cmake). The definition lives in a source file generated at build time.
#include <span>
#include <string_view>

namespace storage::detail {

struct Migration {
  int version;            // from V<version>__<name>.sql
  std::string_view name;  // <name>
  std::string_view sql;   // whole file; may hold several statements
};

// Sorted by strictly increasing version.
std::span<const Migration> embedded_migrations() noexcept;

}  // namespace storage::detail
