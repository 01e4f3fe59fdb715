#pragma once
// What rillflowd's services share: the loop, the pool, the config, the store and the workers.
// Everything here is touched on the loop thread only, except where a comment says otherwise;
// services hand database work to the pool with runtime::on_pool and come back to the loop.

#include "config/config.hpp"
#include "metrics/daemon_metrics.hpp"
#include "plugin/plugin_loader.hpp"
#include "runtime/scheduler.hpp"
#include "status/status.hpp"

#include <rillflow/rillflow.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rillflow::app {

/// A projection of the registry with its loaded plugin.
struct LoadedProjection {
  config::ProjectionConfig config;
  std::shared_ptr<plugin::PluginHandler> handler;
};

/// A `snapshotters:` entry with its loaded folder plugin.
struct LoadedSnapshotter {
  config::SnapshotterEntry config;
  std::shared_ptr<plugin::PluginFolder> folder;
};

/// One unit of a `subscriptions:` entry (partition -1: its only unit) with its own handler.
struct LoadedSubscription {
  config::SubscriptionEntry config;
  int partition = -1;
  std::shared_ptr<plugin::PluginSubscriptionHandler> handler;
};

/// Loads every plugin of the registry; throws PluginError for the first that fails.
std::vector<LoadedProjection> load_registry(const config::Config& cfg);
/// Loads every snapshotter's folder plugin; throws PluginError for the first that fails.
std::vector<LoadedSnapshotter> load_snapshotters(const config::Config& cfg);
/// One handler instance per subscription unit; throws PluginError for the first that fails.
std::vector<LoadedSubscription> load_subscriptions(const config::Config& cfg);

/// The tenants rillflowd's units run in (`tenants:`), as last read from the tenant registry.
struct TenantSet {
  std::vector<std::string> active;   ///< configured and provisioned, sorted
  std::vector<std::string> missing;  ///< listed in `tenants:` but not provisioned, sorted
  bool operator==(const TenantSet&) const = default;
};

/// The tenants `cfg` selects among those registered in `base`'s schema (one query; pool).
TenantSet resolve_tenants(const Store& base, const config::TenantsConfig& cfg);

/// How often the membership service heartbeats; a node silent for 2.5 of these (at most the
/// lease TTL) is not live for assignment (core's Membership::live_window_for).
inline constexpr std::chrono::milliseconds kHeartbeatInterval{1000};

/// One tenant's projection runtime and workers.
struct TenantUnits {
  std::shared_ptr<ProjectionDaemon> runtime;
  std::vector<std::shared_ptr<runtime::Worker>> workers;
};

struct Context {
  Context(config::Config config, std::string path);

  /// Builds the runtime and one worker per unit of the registry, once per tenant of `tenants`
  /// with `tenants:` set, else in the base schema (loop thread, store set; no database I/O).
  void build_workers();
  /// Switches to the tenants of `next` with the scheduler drained (loop thread; no database
  /// I/O): the units of the tenants that stay keep running as they are (leases, subscribers),
  /// new tenants' units are built. Returns the units of the tenants dropped, to release.
  std::vector<TenantUnits> retarget_tenants(TenantSet next);
  /// Every projection runtime: the base's, then one per tenant (leases to give back, ticks to
  /// prune).
  std::vector<std::shared_ptr<ProjectionDaemon>> runtimes() const;

  config::Config cfg;
  std::string config_path;
  boost::asio::io_context loop;
  boost::asio::thread_pool pool;
  metrics::DaemonMetrics metrics;
  runtime::Scheduler scheduler;
  std::string owner;
  std::vector<LoadedProjection> registry;
  std::vector<LoadedSnapshotter> snapshotters;
  std::vector<LoadedSubscription> subscriptions;
  std::optional<EmbeddedPostgres> embedded;
  std::string url;
  std::optional<std::string> listen_url;  ///< database.listen_url_*: a direct URL for LISTEN
  std::optional<Store> store;
  /// The projections' runtime; rebuilt by a reload. Also the node's membership handle
  /// (heartbeat, leave) until the other kinds bring their own runtimes. With `tenants:` it
  /// runs nothing itself (the base schema holds the registry and the membership).
  std::shared_ptr<ProjectionDaemon> daemon;
  /// With `tenants:`: the units of each tenant of `tenants.active`.
  std::map<std::string, TenantUnits> tenant_units;
  TenantSet tenants;
  status::StatusSnapshot snapshot;
  std::vector<std::string> live_nodes;  ///< the membership service's last heartbeat answer
  std::atomic<bool> stopping{false};    ///< SIGTERM: blocking loops on the pool give up
  bool reloading = false;
  bool ready_sent = false;
};

}  // namespace rillflow::app
