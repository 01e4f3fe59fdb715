#pragma once
// Drain (SIGTERM/SIGINT): stop wakeups, let running slices finish their batch, stop the
// membership heartbeat, release every lease and leave the live set, then finish(0). If slices
// are still running at daemon.drain_deadline_ms the process exits 1 at once (their transactions
// roll back and their leases expire after the TTL).

#include "app/context.hpp"
#include "app/membership_service.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>

namespace rillflow::app {

/// Completes once the scheduler runs no slice (it starts none from now on).
boost::asio::awaitable<void> scheduler_drained(Context& ctx);

class DrainService {
 public:
  /// `stop_wakeups` stops the poll timer and the listener; `finish(code)` ends the loop.
  DrainService(Context& ctx, MembershipService& membership, std::function<void()> stop_wakeups,
               std::function<void(int)> finish);
  void begin();
  bool begun() const { return begun_; }
  void cancel_deadline() { deadline_.cancel(); }

 private:
  boost::asio::awaitable<void> run();

  Context& ctx_;
  MembershipService& membership_;
  std::function<void()> stop_wakeups_;
  std::function<void(int)> finish_;
  boost::asio::steady_timer deadline_;
  bool begun_ = false;
};

}  // namespace rillflow::app
