#pragma once

#include <rillflow/fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace rillflow {

/// One migration still to run on a schema.
struct PendingMigration {
  int version = 0;
  std::string name;
  std::string sql;  ///< exactly the DDL sync() will run, schema-qualified
};

/// What differs between the database and the library's migrations.
struct SchemaDrift {
  std::vector<std::string> problems;  ///< one human-readable line per difference
  bool ok() const noexcept { return problems.empty(); }
};

/// The library's versioned migrations, applied per schema. Obtained from Store::schema().
/// Thread-safe; sync() is safe to run from several processes at once.
class SchemaManager {
 public:
  explicit SchemaManager(std::shared_ptr<const detail::StoreState> state)
      : state_(std::move(state)) {}

  /// The migrations not yet applied to the store's schema (empty when current).
  std::vector<PendingMigration> plan() const;
  /// The plan as one SQL script (empty when current).
  std::string plan_sql() const;
  /// Applies the plan in one transaction under a transaction-scoped advisory lock.
  /// Returns the versions applied (empty when already current).
  std::vector<int> sync() const;
  /// Pending or unknown migrations, changed migration text, missing tables and indexes.
  SchemaDrift drift() const;
  /// The newest migration version this library knows.
  static int latest_version() noexcept;

 private:
  std::shared_ptr<const detail::StoreState> state_;
};

/// Validates a PostgreSQL schema (or channel) name: 1-63 characters of [a-z0-9_], not starting
/// with a digit and not starting with "pg_". Throws rillflow::Error (kInvalidArgument).
void validate_identifier(const std::string& name, const char* what);

}  // namespace rillflow
