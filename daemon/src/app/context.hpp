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

/// How often the membership service heartbeats; a node silent for 2.5 of these (at most the
/// lease TTL) is not live for assignment (core's Membership::live_window_for).
inline constexpr std::chrono::milliseconds kHeartbeatInterval{1000};

struct Context {
  Context(config::Config config, std::string path);

  /// Builds the runtime and one worker per unit of the registry (loop thread, store set).
  void build_workers();

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
  /// (heartbeat, leave) until the other kinds bring their own runtimes.
  std::shared_ptr<ProjectionDaemon> daemon;
  status::StatusSnapshot snapshot;
  std::vector<std::string> live_nodes;  ///< the membership service's last heartbeat answer
  std::atomic<bool> stopping{false};    ///< SIGTERM: blocking loops on the pool give up
  bool reloading = false;
  bool ready_sent = false;
};

}  // namespace rillflow::app
