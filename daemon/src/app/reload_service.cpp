#include "app/reload_service.hpp"

#include "app/drain_service.hpp"
#include "app/logging.hpp"
#include "app/systemd_notify.hpp"
#include "app/tenant_service.hpp"
#include "runtime/on_pool.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace rillflow::app {

namespace asio = boost::asio;

namespace {

// Built outside the coroutine body (g++ 12 mishandles init-captures of coroutine locals).
struct Loaded {
  std::optional<config::Config> next;
  std::vector<LoadedProjection> registry;
  std::vector<LoadedSnapshotter> snapshotters;
  std::vector<LoadedSubscription> subscriptions;
  std::string error;
};

auto load_work(std::string path) {
  return [path = std::move(path)] {
    Loaded out;
    try {
      out.next = config::load(path);
      out.registry = load_registry(*out.next);
      out.snapshotters = load_snapshotters(*out.next);
      out.subscriptions = load_subscriptions(*out.next);
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    return out;
  };
}

auto release_work(std::vector<std::shared_ptr<ProjectionDaemon>> old,
                  std::vector<std::shared_ptr<runtime::Worker>> workers) {
  return [old = std::move(old), workers = std::move(workers)] {
    // Subscription units close their subscribers: a removed one's leases and membership go.
    for (const auto& w : workers) w->release();
    try {
      for (const auto& runtime : old) runtime->release_leases();
    } catch (const std::exception& e) {
      spdlog::warn("reload: could not release the old leases: {} (they expire)", e.what());
    }
  };
}

void resume_workers(Context& ctx) {
  ctx.scheduler.resume();
  if (ctx.store) ctx.scheduler.wake_all();
}

auto apply_loaded(Context& ctx, Loaded& loaded, TenantSet tenants) {
  return [&ctx, &loaded, tenants = std::move(tenants)] {
    ctx.registry = std::move(loaded.registry);
    // Snapshotters hold no lease between runs, and none runs once drained: rebuilding is all.
    ctx.snapshotters = std::move(loaded.snapshotters);
    ctx.subscriptions = std::move(loaded.subscriptions);
    ctx.tenants = tenants;
  };
}

}  // namespace

asio::awaitable<void> restart_workers(Context& ctx, std::function<void()> change) {
  co_await scheduler_drained(ctx);
  if (ctx.store) {
    co_await runtime::on_pool(ctx.pool, release_work(ctx.runtimes(), ctx.scheduler.workers()));
  }
  change();
  if (ctx.snapshot.draining) co_return;  // a SIGTERM arrived meanwhile: stay drained
  if (ctx.store) ctx.build_workers();
  resume_workers(ctx);
}

asio::awaitable<void> switch_tenants(Context& ctx, TenantSet next) {
  co_await scheduler_drained(ctx);
  std::vector<std::shared_ptr<ProjectionDaemon>> runtimes;
  std::vector<std::shared_ptr<runtime::Worker>> workers;
  for (auto& units : ctx.retarget_tenants(std::move(next))) {
    runtimes.push_back(std::move(units.runtime));
    workers.insert(workers.end(), units.workers.begin(), units.workers.end());
  }
  co_await runtime::on_pool(ctx.pool, release_work(std::move(runtimes), std::move(workers)));
  if (ctx.snapshot.draining) co_return;
  resume_workers(ctx);
}

ReloadService::ReloadService(Context& ctx, std::function<void()> on_applied)
    : ctx_(ctx), on_applied_(std::move(on_applied)) {}

void ReloadService::on_sighup() {
  if (ctx_.reloading || ctx_.snapshot.draining) return;
  ctx_.reloading = true;
  notify_reloading();
  spdlog::info("SIGHUP: reloading {}", ctx_.config_path);
  asio::co_spawn(ctx_.loop, run(), asio::detached);
}

asio::awaitable<void> ReloadService::run() {
  Loaded loaded = co_await runtime::on_pool(ctx_.pool, load_work(ctx_.config_path));
  if (!loaded.error.empty()) {
    spdlog::error("reload failed, keeping the current configuration: {}", loaded.error);
    ctx_.reloading = false;
    notify_ready();
    co_return;
  }
  const auto restart = config::restart_only_changes(ctx_.cfg, *loaded.next);
  if (!restart.empty()) {
    std::string keys;
    for (const auto& k : restart) keys += (keys.empty() ? "" : ", ") + k;
    spdlog::warn("reload: {} changed but need(s) a restart; those changes are ignored", keys);
  }
  config::apply_reloadable(ctx_.cfg, *loaded.next);
  set_log_level(ctx_.cfg.logging.level);
  TenantSet tenants;
  try {
    tenants = co_await read_tenants(ctx_);
  } catch (const std::exception& e) {
    spdlog::warn("reload: cannot read the tenant registry ({}); no tenant runs until it can",
                 e.what());
  }
  co_await restart_workers(ctx_, apply_loaded(ctx_, loaded, std::move(tenants)));
  ctx_.reloading = false;
  if (ctx_.snapshot.draining) co_return;
  notify_ready();
  if (ctx_.store) {
    spdlog::info("reloaded: {} projection(s), {} snapshotter(s), {} subscription unit(s)",
                 ctx_.registry.size(), ctx_.snapshotters.size(), ctx_.subscriptions.size());
    if (on_applied_) on_applied_();
  }
}

}  // namespace rillflow::app
