#pragma once
// rillflowd.yaml, parsed once into typed structs shared by the daemon and the CLI. Every key is
// declared once (config.cpp's key tables): type, default, reloadable, description. The tables
// drive parsing, unknown-key rejection, --check-config and config/README.md.

#include <rillflow/json.hpp>
#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/snapshots/snapshotter.hpp>
#include <rillflow/subscriptions/subscriptions.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rillflow::config {

// The defaults of every key live in the key table (config.cpp) and nowhere else: parse() starts
// from them (parse("") is the default config). A struct built here without parse() holds empty
// values, not defaults.

struct DatabaseConfig {
  std::string url_env;
  std::string url_file;
  bool require_url{};
  std::int64_t max_connections{};
  std::string prepared_statements;  ///< auto | on | off (PreparedStatements)
  std::string listen_url_env;       ///< direct (unpooled) URL for LISTEN, by variable
  std::string listen_url_file;      ///< ... or by file
};

struct HttpConfig {
  std::string bind;
  std::int64_t port{};
};

struct LoggingConfig {
  std::string level;
  std::string format;
};

struct DaemonConfig {
  std::int64_t drain_deadline_ms{};
  std::int64_t lease_ttl_ms{};
  std::int64_t poll_interval_ms{};
  bool notify{};
  std::string notify_channel;
};

struct RetryConfig {
  std::int64_t max_attempts{};
  std::int64_t base_delay_ms{};
  std::int64_t max_delay_ms{};
  bool operator==(const RetryConfig&) const = default;
};

struct ProjectionConfig {
  std::string name;
  std::string plugin;
  std::vector<std::string> event_types;
  std::int64_t batch_size{};
  RetryConfig retry;
  std::string on_failure;
  Json settings = boost::json::object();

  /// The runtime's options for this projection.
  ProjectionOptions options() const;
  bool operator==(const ProjectionConfig&) const = default;
};

/// One entry of `snapshotters:` (background compaction with an aggregate folder plugin).
struct SnapshotterEntry {
  std::string name;
  std::string plugin;
  std::int64_t threshold{};
  std::int64_t batch{};
  std::int64_t interval_ms{};
  std::string stream_prefix;
  Json settings = boost::json::object();

  /// The library's settings for this snapshotter (lease TTL from daemon.lease_ttl_ms).
  SnapshotterConfig options(std::chrono::milliseconds lease_ttl) const;
  bool operator==(const SnapshotterEntry&) const = default;
};

/// One entry of `subscriptions:`: a stored subscription that rillflowd delivers to a plugin.
struct SubscriptionEntry {
  std::string name;
  std::string plugin;
  std::vector<std::string> event_types;  ///< filter.event_types
  std::vector<std::string> stream_ids;   ///< filter.stream_ids (UUID text, checked)
  std::string stream_prefix;             ///< filter.stream_prefix ("" = any)
  std::string start_from;                ///< StartFrom::parse text
  std::string group;                     ///< "" = no group (one unit, one holder)
  std::int64_t partitions{};             ///< group only: 0 = unpartitioned
  std::int64_t max_in_flight{};          ///< group only: 0 = unbounded
  std::string ack;                       ///< after_handler | in_transaction
  std::int64_t batch_size{};
  RetryConfig retry;
  std::string on_failure;
  Json settings = boost::json::object();

  SubscriptionFilter filter() const;
  /// The subscriber's options (member id and partition are the worker's to set).
  SubscriptionOptions options(std::chrono::milliseconds lease_ttl) const;
  /// The partitions rillflowd runs as units: {-1} without a group or partitions, else 0..N-1.
  std::vector<int> unit_partitions() const;
  bool operator==(const SubscriptionEntry&) const = default;
};

/// `tenants:`: run every unit once per tenant schema (docs/tenants.md).
struct TenantsConfig {
  bool enabled = false;            ///< the key is set: units run per tenant, not in `schema`
  bool all = false;                ///< every tenant of the registry, new ones picked up
  std::vector<std::string> names;  ///< else these tenants (validated names, no duplicates)
  bool operator==(const TenantsConfig&) const = default;
};

struct MetricsConfig {
  bool tenant_label{};  ///< label per-unit series with `tenant`
};

struct Config {
  DatabaseConfig database;
  std::string schema;
  HttpConfig http;
  LoggingConfig logging;
  DaemonConfig daemon;
  std::vector<ProjectionConfig> projections;
  std::vector<SnapshotterEntry> snapshotters;
  std::vector<SubscriptionEntry> subscriptions;
  TenantsConfig tenants;
  MetricsConfig metrics;
  std::string source;  ///< the file it came from (for messages)
};

/// Parses YAML text. Throws ConfigError naming the key path and the offending value.
Config parse(const std::string& yaml_text, const std::string& source = "<config>");
/// Reads and parses a file; a missing file is a ConfigError too.
Config load(const std::string& path);

/// The database URL: the variable named by database.url_env, else database.url_file's content.
/// nullopt means "start an embedded PostgreSQL" (unless database.require_url is set: then a
/// ConfigError). The URL is a secret: never log it.
std::optional<std::string> resolve_database_url(const DatabaseConfig& db);

/// The direct URL for the LISTEN connection: database.listen_url_env's variable, else
/// database.listen_url_file's content; nullopt when neither is configured (LISTEN then uses the
/// database URL). A configured but unset variable or unreadable file is a ConfigError.
std::optional<std::string> resolve_listen_url(const DatabaseConfig& db);

/// The reference table (Markdown) of every key: key, type, default, reloadable, meaning.
std::string reference_markdown();
/// The restart-only keys (reloadable = no in the key table) whose value differs between the
/// running config and a reloaded one, by path ("database.require_url", ...).
std::vector<std::string> restart_only_changes(const Config& running, const Config& next);
/// Copies every reloadable key (per the key table) of `next` into `running`.
void apply_reloadable(Config& running, const Config& next);
/// The key table as JSON (rillflowd --print-config-schema): {"keys": [{"key", "type",
/// "default", "reloadable", "description"}...]}, in table order.
std::string schema_json();
/// Every key path, e.g. "daemon.lease_ttl_ms", "projections[].retry.max_attempts",
/// "subscriptions[].filter.event_types".
std::vector<std::string> key_paths();

}  // namespace rillflow::config
