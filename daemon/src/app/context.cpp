#include "app/context.hpp"

#include "projections/projection_worker.hpp"
#include "snapshots/snapshotter_worker.hpp"
#include "subscriptions/subscription_worker.hpp"

#include <rillflow/tenants/tenant_registry.hpp>

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
// subscription unit (eight with `tenants:`, whose count is not known yet: slices are short and
// take turns), plus three for the services (connect, membership, status) and the listener's
// reconnects.
std::size_t pool_threads(const config::Config& cfg) {
  std::size_t units = cfg.projections.size() + cfg.snapshotters.size();
  for (const auto& s : cfg.subscriptions) units += s.unit_partitions().size();
  if (cfg.tenants.enabled) units *= 8;
  return std::min<std::size_t>(64, units + 3);
}
}  // namespace

Context::Context(config::Config config, std::string path)
    : cfg(std::move(config)),
      config_path(std::move(path)),
      pool(pool_threads(cfg)),
      metrics(rillflow::version(), cfg.metrics.tenant_label),
      scheduler(loop, pool),
      owner(ProjectionDaemon::new_owner_id()) {
  snapshot.owner = owner;
  snapshot.version = rillflow::version();
}

TenantSet resolve_tenants(const Store& base, const config::TenantsConfig& cfg) {
  TenantSet out;
  if (!cfg.enabled) return out;
  std::vector<std::string> registered;
  for (const auto& t : base.tenants().list()) registered.push_back(t.name);
  // In byte order, as binary_search here and retarget_tenants expect (the registry's order is
  // the database collation's).
  std::sort(registered.begin(), registered.end());
  if (cfg.all) {
    out.active = std::move(registered);
    return out;
  }
  for (const auto& name : cfg.names) {  // sorted by the config parser
    auto& into =
        std::binary_search(registered.begin(), registered.end(), name) ? out.active : out.missing;
    into.push_back(name);
  }
  return out;
}

namespace {

ProjectionDaemon projection_runtime(const Context& ctx, const Store& store, bool with_registry) {
  auto builder = ProjectionDaemon::builder(store)
                     .owner_id(ctx.owner)
                     .lease_ttl(std::chrono::milliseconds(ctx.cfg.daemon.lease_ttl_ms))
                     .heartbeat_interval(kHeartbeatInterval);
  if (with_registry) {
    for (const auto& p : ctx.registry)
      builder.register_projection(p.config.name, p.handler, p.config.options());
  }
  return builder.build();
}

// One worker per unit of the registry, in `unit_store`'s schema (that of `tenant`, or the
// base's).
void add_units(Context& ctx, const Store& unit_store, const std::string& tenant,
               const std::shared_ptr<ProjectionDaemon>& runtime,
               std::vector<std::shared_ptr<runtime::Worker>>& workers) {
  const auto& cfg = ctx.cfg;
  auto& metrics = ctx.metrics;
  const auto& owner = ctx.owner;
  for (const auto& p : ctx.registry)
    workers.push_back(
        std::make_shared<projections::ProjectionWorker>(runtime, p.config.name, metrics, tenant));
  // Snapshotters take their leases under this node's owner id, the one membership assigns by.
  for (const auto& s : ctx.snapshotters) {
    auto options = s.config.options(std::chrono::milliseconds(cfg.daemon.lease_ttl_ms));
    options.owner = owner;
    workers.push_back(std::make_shared<snapshots::SnapshotterWorker>(
        Snapshotter(unit_store, s.folder, std::move(options)),
        std::chrono::milliseconds(s.config.interval_ms), metrics, tenant));
  }
  // Subscription units join their groups under this node's owner id (member owner/unit).
  for (const auto& s : ctx.subscriptions) {
    workers.push_back(std::make_shared<subscriptions::SubscriptionWorker>(
        unit_store, s.config, s.partition, s.handler, owner,
        std::chrono::milliseconds(cfg.daemon.lease_ttl_ms), metrics, tenant));
  }
}

TenantUnits tenant_units_of(Context& ctx, const std::string& tenant) {
  // Listed in the registry by resolve_tenants: no lookup needed to open its schema.
  const Store tenant_store = ctx.store->with_schema(tenant_schema_of(tenant));
  TenantUnits out;
  out.runtime = std::make_shared<ProjectionDaemon>(projection_runtime(ctx, tenant_store, true));
  add_units(ctx, tenant_store, tenant, out.runtime, out.workers);
  return out;
}

std::vector<std::shared_ptr<runtime::Worker>> all_workers(const Context& ctx) {
  std::vector<std::shared_ptr<runtime::Worker>> out;
  for (const auto& [tenant, units] : ctx.tenant_units)
    out.insert(out.end(), units.workers.begin(), units.workers.end());
  return out;
}

}  // namespace

void Context::build_workers() {
  const bool per_tenant = cfg.tenants.enabled;
  daemon = std::make_shared<ProjectionDaemon>(projection_runtime(*this, *store, !per_tenant));
  tenant_units.clear();
  if (!per_tenant) {
    std::vector<std::shared_ptr<runtime::Worker>> workers;
    add_units(*this, *store, "", daemon, workers);
    scheduler.set_workers(std::move(workers));
    return;
  }
  for (const auto& tenant : tenants.active) tenant_units[tenant] = tenant_units_of(*this, tenant);
  scheduler.set_workers(all_workers(*this));
}

std::vector<TenantUnits> Context::retarget_tenants(TenantSet next) {
  std::vector<TenantUnits> leaving;
  std::erase_if(tenant_units, [&](auto& kv) {
    if (std::binary_search(next.active.begin(), next.active.end(), kv.first)) return false;
    leaving.push_back(std::move(kv.second));
    return true;
  });
  for (const auto& tenant : next.active) {
    if (!tenant_units.contains(tenant)) tenant_units[tenant] = tenant_units_of(*this, tenant);
  }
  tenants = std::move(next);
  scheduler.set_workers(all_workers(*this));
  return leaving;
}

std::vector<std::shared_ptr<ProjectionDaemon>> Context::runtimes() const {
  std::vector<std::shared_ptr<ProjectionDaemon>> out;
  if (daemon) out.push_back(daemon);
  for (const auto& [tenant, units] : tenant_units) out.push_back(units.runtime);
  return out;
}

}  // namespace rillflow::app
