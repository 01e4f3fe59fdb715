#include "app/systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>

namespace rillflow::app {

void notify_ready() {
  sd_notify(0, "READY=1\nSTATUS=serving");
}
void notify_reloading() {
  sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}
void notify_stopping() {
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
}
void notify_watchdog() {
  sd_notify(0, "WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec / 2);
  return std::nullopt;
}

}  // namespace rillflow::app
