#pragma once
// Schema-per-tenant: each tenant's documents, events, snapshots and projections live in a schema
// of its own ("tenant_<name>"), migrated with the same migrations as the base schema, and listed
// in the base schema's `tenants` table. See docs/tenants.md.

#include <rillflow/fwd.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rillflow {

/// Where a Store's sessions keep their data.
enum class TenantStrategy {
  kSingle,           ///< every session uses the store's schema (default)
  kSchemaPerTenant,  ///< every session names its tenant (session.context().tenant)
  SchemaPerTenant = kSchemaPerTenant,  ///< the seed README's spelling
};

/// The longest tenant name (the schema "tenant_<name>" stays well inside PostgreSQL's 63).
inline constexpr std::size_t kMaxTenantNameLength = 48;

/// Throws Error (kInvalidArgument) unless `name` matches [a-z][a-z0-9_]{0,47} and is not a
/// reserved name (public, information_schema, pg_*). Nothing is sent to the database.
void validate_tenant_name(std::string_view name);
/// What a tenant's schema name starts with; the tenant's name follows.
inline constexpr std::string_view kTenantSchemaPrefix = "tenant_";
/// "tenant_<name>" for a valid name (validates it).
std::string tenant_schema_of(std::string_view name);

/// One row of the tenant registry.
struct TenantInfo {
  std::string name;
  std::string schema;  ///< tenant_<name>
  std::chrono::system_clock::time_point created_at;
  int schema_version = 0;  ///< the newest migration applied when it was last ensured
  std::chrono::system_clock::time_point migrated_at;
  std::optional<std::chrono::system_clock::time_point> archived_at;  ///< last archive taken
};

/// What ensure_tenant did.
struct EnsuredTenant {
  TenantInfo tenant;
  std::vector<int> applied;  ///< migrations this call ran on the tenant's schema (empty: none)
  bool created = false;      ///< this call added the registry row
  bool cached = false;       ///< answered from the in-process cache (no database round trip)
};

/// Schema version, drift and row counts of one tenant.
struct TenantStatus {
  TenantInfo tenant;
  int latest_version = 0;  ///< the newest migration this library knows
  SchemaDrift drift;
  std::map<std::string, std::int64_t> rows;  ///< table -> row count (streams, events, docs...)
};

/// A dump of one tenant's schema written by archive().
struct TenantArchive {
  std::string tenant;
  std::string schema;
  std::filesystem::path directory;
  std::filesystem::path dump;      ///< <directory>/<schema>.dump (pg_dump custom format)
  std::filesystem::path manifest;  ///< <directory>/manifest.json (tenant, version, row counts)
  std::map<std::string, std::int64_t> rows;
  std::uintmax_t bytes = 0;  ///< size of the dump file
};

/// Provisions, lists, inspects, archives and drops the tenants of one base schema. Obtained from
/// Store::tenants(); cheap to copy; thread-safe. Every call validates the tenant name first and
/// sends nothing to the database for an invalid one. Names reach SQL only as quoted identifiers
/// of validated names or as bound parameters.
class TenantRegistry {
 public:
  explicit TenantRegistry(std::shared_ptr<const detail::StoreState> state)
      : state_(std::move(state)) {}

  /// Creates and migrates tenant_<name> and records it, in one transaction under the tenant
  /// schema's transaction-scoped advisory lock (concurrent callers in any process migrate once;
  /// no session lock, so it works behind PgBouncer in transaction mode). Idempotent; once done,
  /// answered from an in-process cache. Throws Error (kSchema) when the base schema lacks the
  /// registry (run schema-sync).
  EnsuredTenant ensure(std::string_view name) const;
  /// A store whose objects live in the tenant's schema (sessions, events, docs, aggregates,
  /// ProjectionDaemon::builder). Throws TenantNotFound when it is not provisioned.
  Store open(std::string_view name) const;
  /// The registry row, or nullopt (never creates one).
  std::optional<TenantInfo> find(std::string_view name) const;
  /// Every registered tenant, by name.
  std::vector<TenantInfo> list() const;
  /// Schema version, drift and row counts. TenantNotFound when not registered.
  TenantStatus status(std::string_view name) const;
  /// Drift of one tenant's schema against the library's migrations. TenantNotFound when not
  /// registered.
  SchemaDrift drift(std::string_view name) const;
  /// Writes a restorable dump of the tenant's schema (pg_dump -Fc -n tenant_<name>) and a
  /// manifest into `directory` (created; refused when it already holds an archive), then records
  /// archived_at. pg_dump is found like the embedded PostgreSQL's binaries ($RILLFLOW_PG_BINDIR,
  /// `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin, then PATH). Restore with
  /// `pg_restore --dbname "$DATABASE_URL" <dump>` and `rillflow tenants ensure <name>`
  /// (docs/tenants.md). Throws kNotInstalled without pg_dump, kInternal when it fails.
  TenantArchive archive(std::string_view name, const std::filesystem::path& directory) const;
  /// Drops the tenant's schema with everything in it and removes the registry row, in one
  /// transaction. TenantNotFound when not registered.
  void drop(std::string_view name) const;

 private:
  std::shared_ptr<const detail::StoreState> state_;
};

}  // namespace rillflow
