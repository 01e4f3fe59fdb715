#pragma once

#include <rillflow/documents/document_store.hpp>
#include <rillflow/events/event_store.hpp>
#include <rillflow/events/notify.hpp>
#include <rillflow/fwd.hpp>
#include <rillflow/projections/projections.hpp>
#include <rillflow/schema/schema_manager.hpp>
#include <rillflow/tenants/tenant_registry.hpp>
#include <rillflow/uuid.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rillflow {

class Subscriptions;

/// Whether statements are prepared once per connection under a name and reused.
///
/// Named prepared statements are session state: a transaction-pooling PgBouncer, RDS Proxy or
/// any pooler that hands each transaction a different server connection loses or mixes them
/// (PostgreSQL errors 42P05 "prepared statement already exists", 26000 "does not exist").
enum class PreparedStatements {
  kAuto,  ///< on, unless a pooler is seen (at build, or its first 42P05 / 26000): then off
  kOn,    ///< always prepared (a direct connection or a session-pooling pooler)
  kOff,   ///< never: every statement is sent unnamed with its parameters (works with any pooler)
};

/// "auto", "on" or "off".
std::string_view to_string(PreparedStatements mode) noexcept;
/// Parses "auto", "on" or "off"; nullopt for anything else.
std::optional<PreparedStatements> parse_prepared_statements(std::string_view text) noexcept;

/// Connection settings of a Store. Defaults are the values documented on StoreBuilder.
struct StoreOptions {
  std::size_t max_connections = 10;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds acquire_timeout{30000};
  std::string schema = "public";
  /// LISTEN/NOTIFY channel committed appends notify (at most once per millisecond and store);
  /// empty disables NOTIFY.
  std::string notify_channel = std::string(notify::kDefaultChannel);
  std::string application_name = "rillflow";
  /// Metadata every session's event appends carry unless the session overrides it
  /// (headers, causation_id, correlation_id; an idempotency key here is rejected).
  AppendOptions session_defaults;
  /// Session appends also take a transaction-scoped advisory lock per stream.
  bool session_advisory_locks = false;
  /// Named prepared statements (see PreparedStatements).
  PreparedStatements prepared_statements = PreparedStatements::kAuto;
  /// kSchemaPerTenant: every session must name its tenant (docs/tenants.md).
  TenantStrategy tenant_strategy = TenantStrategy::kSingle;
  /// Receives rare operational messages (e.g. "prepared statements off: a pooler ..."); they
  /// never contain a password. Called from whichever thread noticed; must be thread-safe.
  std::function<void(std::string_view message)> log_sink;
};

/// The entry point: a PostgreSQL connection pool plus the schema Rillflow's tables live in.
///
/// A Store is cheap to copy (copies share the pool) and safe to use from many threads.
/// Connections are opened lazily, up to max_connections; a broken one is discarded.
class Store {
 public:
  /// Starts a builder; `url` is a libpq URL or key=value string.
  static StoreBuilder builder(std::string url);
  /// Store::builder(url).build().
  static Store connect(std::string url);

  EventStore events() const;
  /// Waiting for projections and why they wait (read-only; see projections/projections.hpp).
  Projections projections() const;
  DocumentStore docs() const;
  SchemaManager schema() const;
  /// A unit of work (identity map, staged documents, events and aggregate commits, one
  /// transaction at save_changes). See docs/session.hpp.
  DocumentSession session() const;
  /// Subscriptions and consumer groups (include rillflow/subscriptions.hpp).
  Subscriptions subscriptions() const;

  /// The stream id for a human-friendly alias such as "orders:42", created on first use.
  /// Race-safe: concurrent first calls get the same id.
  Uuid resolve_stream_alias(std::string_view alias) const;
  /// The stream id of an existing alias, or nullopt; never creates one (reads never write).
  std::optional<Uuid> find_stream_alias(std::string_view alias) const;

  /// A store on the same connection pool whose objects live in another schema.
  Store with_schema(std::string schema) const;

  // Schema-per-tenant (docs/tenants.md). Tenant names match [a-z][a-z0-9_]{0,47}; tenant
  // `acme` lives in schema `tenant_acme`, listed in this store's schema's `tenants` table.
  /// Provisions the tenant (TenantRegistry::ensure): idempotent, migrates once across
  /// processes, cached in-process once done.
  EnsuredTenant ensure_tenant(std::string_view name) const;
  /// The tenant's store: events, docs, sessions, aggregates and projections of that tenant only.
  /// Throws TenantNotFound("tenant_<name>") when it is not provisioned.
  Store tenant(std::string_view name) const;
  /// List, status, archive and drop of this store's tenants.
  TenantRegistry tenants() const;
  /// The tenant this store is scoped to (Store::tenant), or nullopt for a base store.
  const std::optional<std::string>& tenant_name() const noexcept;

  const StoreOptions& options() const noexcept;
  /// Connections the pool holds open now.
  std::size_t open_connections() const;
  /// Host, port, database and user of the pool's target, never the password.
  std::string describe_target() const;
  /// True when a connection pooler sits between the store and PostgreSQL: the process id the
  /// server reports differs from the one the connection handshake gave (PgBouncer, RDS Proxy and
  /// others hand out keys of their own). Measured once, by build().
  bool behind_pooler() const;
  /// True while statements are prepared under names (kOn, or kAuto before a pooler was seen).
  bool prepares_statements() const;

  explicit Store(std::shared_ptr<const detail::StoreState> state) : state_(std::move(state)) {}
  /// The shared internals (for Rillflow's own components such as AggregateRepository).
  const std::shared_ptr<const detail::StoreState>& shared_state() const noexcept { return state_; }

 private:
  friend struct detail::StoreAccess;
  std::shared_ptr<const detail::StoreState> state_;
};

/// Configures and builds a Store. build() validates the options, opens one connection to
/// fail fast (ConnectionError names host and port) and returns the store.
class StoreBuilder {
 public:
  explicit StoreBuilder(std::string url) : url_(std::move(url)) {}

  /// Pool size (default 10, at least 1).
  StoreBuilder& max_connections(std::size_t n) {
    options_.max_connections = n;
    return *this;
  }
  /// Time allowed to open one connection (default 5 s; libpq rounds up to whole seconds, min 2).
  StoreBuilder& connect_timeout(std::chrono::milliseconds d) {
    options_.connect_timeout = d;
    return *this;
  }
  /// How long a caller waits for a free pooled connection (default 30 s) before kTimeout.
  StoreBuilder& acquire_timeout(std::chrono::milliseconds d) {
    options_.acquire_timeout = d;
    return *this;
  }
  /// The schema holding every Rillflow object (default "public"). Validated, always quoted.
  StoreBuilder& schema(std::string name) {
    options_.schema = std::move(name);
    return *this;
  }
  /// NOTIFY channel for appends (default "rillflow_events"); "" turns NOTIFY off.
  StoreBuilder& notify_channel(std::string channel) {
    options_.notify_channel = std::move(channel);
    return *this;
  }
  /// Headers, causation and correlation ids every session append carries by default.
  StoreBuilder& session_defaults(AppendOptions defaults) {
    options_.session_defaults = std::move(defaults);
    return *this;
  }
  /// Session appends also take a transaction-scoped advisory lock per stream (default off).
  StoreBuilder& session_advisory_locks(bool on) {
    options_.session_advisory_locks = on;
    return *this;
  }
  /// Named prepared statements: kAuto (default), kOn or kOff (see PreparedStatements).
  StoreBuilder& prepared_statements(PreparedStatements mode) {
    options_.prepared_statements = mode;
    return *this;
  }
  /// kSchemaPerTenant: sessions route to their tenant's schema and refuse to run without one
  /// (default kSingle: sessions use the store's schema and must not name a tenant).
  StoreBuilder& tenant_strategy(TenantStrategy strategy) {
    options_.tenant_strategy = strategy;
    return *this;
  }
  /// Where rare operational messages go (default: nowhere). See StoreOptions::log_sink.
  StoreBuilder& log_sink(std::function<void(std::string_view message)> sink) {
    options_.log_sink = std::move(sink);
    return *this;
  }
  StoreBuilder& application_name(std::string name) {
    options_.application_name = std::move(name);
    return *this;
  }
  Store build() const;

 private:
  std::string url_;
  StoreOptions options_;
};

}  // namespace rillflow
