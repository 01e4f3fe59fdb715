#pragma once
// Reload (SIGHUP): parse the whole file and load every plugin on the pool; on any failure log
// why and keep the running configuration. Otherwise apply the reloadable keys (the key table's
// flag says which; changes to the others are logged as needing a restart), drain the workers,
// release the old runtime's leases, build the new registry and resume.

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>

namespace rillflow::app {

/// Drains the workers (waits for running slices), gives back what they and the projection
/// runtimes hold, runs `change` (a new registry, a new tenant set), then builds the workers again
/// and wakes them (loop thread; the caller sets ctx.reloading around it). Shared by SIGHUP
/// reloads and the tenant service. With a drain begun meanwhile, the workers stay stopped.
boost::asio::awaitable<void> restart_workers(Context& ctx, std::function<void()> change);
/// The tenant service's change: drains the workers, keeps those of the tenants that stay (their
/// leases and subscribers untouched), builds the new tenants' and releases the dropped ones'.
boost::asio::awaitable<void> switch_tenants(Context& ctx, TenantSet next);

class ReloadService {
 public:
  /// `on_applied` runs on the loop once the new workers are built.
  ReloadService(Context& ctx, std::function<void()> on_applied);
  void on_sighup();

 private:
  boost::asio::awaitable<void> run();

  Context& ctx_;
  std::function<void()> on_applied_;
};

}  // namespace rillflow::app
