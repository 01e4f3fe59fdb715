#pragma once
// The single source of truth for Rillflow's schema: versioned migrations, applied in order and
// recorded per schema in {schema}.rillflow_migrations. Never edit a released migration; add one.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rillflow::schema {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;  ///< with {schema} placeholders
  /// Relations (tables, indexes) the migration creates, checked by drift().
  std::vector<std::string_view> relations;
};

std::span<const Migration> migrations();
/// FNV-1a 64 of the migration text, as 16 hex digits: stable across builds and platforms.
std::string checksum(std::string_view sql);

/// Creates the schema and the migrations table when missing.
extern const std::string_view kBootstrapSql;

}  // namespace rillflow::schema
