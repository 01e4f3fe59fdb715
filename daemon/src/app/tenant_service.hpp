#pragma once
// With `tenants:` set, every daemon.poll_interval_ms: reads the tenant registry of the base
// schema and, when the tenants the config selects changed (one ensured, one dropped), starts the
// new tenants' workers and stops the dropped ones' (switch_tenants; the others run on untouched).
// Listed tenants not provisioned yet are kept in
// the status snapshot: the daemon is unready, saying which.

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>

namespace rillflow::app {

/// The tenants `ctx.cfg` selects, read on the pool (loop thread; no-op result without
/// `tenants:`). Throws what resolve_tenants throws.
boost::asio::awaitable<TenantSet> read_tenants(Context& ctx);

class TenantService {
 public:
  /// `on_changed` runs on the loop after the workers were restarted for a new tenant set.
  TenantService(Context& ctx, std::function<void()> on_changed);
  void start();
  void stop();

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> round();

  Context& ctx_;
  std::function<void()> on_changed_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace rillflow::app
