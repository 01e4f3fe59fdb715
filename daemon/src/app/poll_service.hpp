#pragma once
// Timers that wake things: the polling fallback (every daemon.poll_interval_ms, read at each
// round so a reload applies) wakes every worker; the systemd watchdog ping.

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace rillflow::app {

class PollService {
 public:
  explicit PollService(Context& ctx);
  /// Starts the watchdog pings (at once) and, once connected, the poll timer (start_polling).
  void start_watchdog();
  void start_polling();
  void stop_polling();
  void stop();

 private:
  boost::asio::awaitable<void> poll();
  boost::asio::awaitable<void> watchdog();

  Context& ctx_;
  boost::asio::steady_timer poll_timer_, watchdog_timer_;
  bool polling_ = false;
  bool stopped_ = false;
};

}  // namespace rillflow::app
