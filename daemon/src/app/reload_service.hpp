#pragma once
// Reload (SIGHUP): parse the whole file and load every plugin on the pool; on any failure log
// why and keep the running configuration. Otherwise apply the reloadable keys (the key table's
// flag says which; changes to the others are logged as needing a restart), drain the workers,
// release the old runtime's leases, build the new registry and resume.

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>

namespace rillflow::app {

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
