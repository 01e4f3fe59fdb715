#pragma once
// sd_notify: READY / RELOADING / STOPPING / WATCHDOG. No-ops outside systemd.

#include <chrono>
#include <optional>

namespace rillflow::app {

void notify_ready();
void notify_reloading();
void notify_stopping();
void notify_watchdog();
/// The watchdog ping interval (half of WatchdogSec), when systemd asked for pings.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace rillflow::app
