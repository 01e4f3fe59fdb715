#pragma once
// Membership: the one place that decides what this node runs, for every worker kind. On its own
// timer (kHeartbeatInterval): heartbeat, then the assignment (core's runtime::assign_units over
// the (kind, name) keys of every worker), then gained and lost work (set_assigned; a worker that
// lost its unit gives the lease back at its next slice), then a wake of every changed worker.
// Also prunes feed ticks once a minute. The status service only reports what this decided.

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>

namespace rillflow::app {

/// What one round decided, applied to the workers by `apply` (pure; unit-tested).
struct AssignmentChange {
  std::vector<runtime::UnitKey> gained;
  std::vector<runtime::UnitKey> lost;
};
AssignmentChange apply_assignment(const std::vector<std::shared_ptr<runtime::Worker>>& workers,
                                  const std::vector<runtime::UnitKey>& mine);

class MembershipService {
 public:
  /// `on_round` runs on the loop after every round that reached the database.
  MembershipService(Context& ctx, std::function<void()> on_round);
  void start();
  /// Runs a round now (after a connect or a reload).
  void kick();
  /// No more heartbeats; `done` runs on the loop once no round is in flight (then leave() is
  /// safe: a heartbeat after it would make the others wait a lease TTL).
  void stop(std::function<void()> done);

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> round();

  Context& ctx_;
  std::function<void()> on_round_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  bool kicked_ = false;
  bool in_round_ = false;
  std::function<void()> on_stopped_;
  std::chrono::steady_clock::time_point last_prune_ = std::chrono::steady_clock::now();
};

}  // namespace rillflow::app
