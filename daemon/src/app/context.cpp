#include "app/context.hpp"

#include "projections/projection_worker.hpp"
#include "snapshots/snapshotter_worker.hpp"
#include "subscriptions/subscription_worker.hpp"

#include <algorithm>

namespace rillflow::app {

std::vector<LoadedProjection> load_registry(const config::Config& cfg) {
  std::vector<LoadedProjection> out;
  for (const auto& p : cfg.projections)
    out.push_back({p, plugin::load_projection_plugin(p.plugin, p.settings)});
  return out;
}

std::vector<LoadedSnapshotter> load_snapshotters(const config::Config& cfg) {
  std::vector<LoadedSnapshotter> out;
  for (const auto& s : cfg.snapshotters)
    out.push_back({s, plugin::load_folder_plugin(s.plugin, s.settings)});
  return out;
}

std::vector<LoadedSubscription> load_subscriptions(const config::Config& cfg) {
  std::vector<LoadedSubscription> out;
  for (const auto& s : cfg.subscriptions) {
    for (const int p : s.unit_partitions())
      out.push_back({s, p, plugin::load_subscription_plugin(s.plugin, s.settings)});
  }
  return out;
}

namespace {
// The thread pool is sized at start: one thread per configured projection, snapshotter and
// subscription unit, plus three for the services (connect, membership, status) and the
// listener's reconnects.
std::size_t pool_threads(const config::Config& cfg) {
  std::size_t units = 0;
  for (const auto& s : cfg.subscriptions) units += s.unit_partitions().size();
  return std::min<std::size_t>(64, cfg.projections.size() + cfg.snapshotters.size() + units + 3);
}
}  // namespace

Context::Context(config::Config config, std::string path)
    : cfg(std::move(config)),
      config_path(std::move(path)),
      pool(pool_threads(cfg)),
      metrics(rillflow::version()),
      scheduler(loop, pool),
      owner(ProjectionDaemon::new_owner_id()) {
  snapshot.owner = owner;
  snapshot.version = rillflow::version();
}

void Context::build_workers() {
  auto builder = ProjectionDaemon::builder(*store)
                     .owner_id(owner)
                     .lease_ttl(std::chrono::milliseconds(cfg.daemon.lease_ttl_ms))
                     .heartbeat_interval(kHeartbeatInterval);
  for (const auto& p : registry)
    builder.register_projection(p.config.name, p.handler, p.config.options());
  daemon = std::make_shared<ProjectionDaemon>(builder.build());
  std::vector<std::shared_ptr<runtime::Worker>> workers;
  for (const auto& p : registry)
    workers.push_back(
        std::make_shared<projections::ProjectionWorker>(daemon, p.config.name, metrics));
  // Snapshotters take their leases under this node's owner id, the one membership assigns by.
  for (const auto& s : snapshotters) {
    auto options = s.config.options(std::chrono::milliseconds(cfg.daemon.lease_ttl_ms));
    options.owner = owner;
    workers.push_back(std::make_shared<snapshots::SnapshotterWorker>(
        Snapshotter(*store, s.folder, std::move(options)),
        std::chrono::milliseconds(s.config.interval_ms), metrics));
  }
  // Subscription units join their groups under this node's owner id (member owner/unit).
  for (const auto& s : subscriptions) {
    workers.push_back(std::make_shared<subscriptions::SubscriptionWorker>(
        *store, s.config, s.partition, s.handler, owner,
        std::chrono::milliseconds(cfg.daemon.lease_ttl_ms), metrics));
  }
  scheduler.set_workers(std::move(workers));
}

}  // namespace rillflow::app
