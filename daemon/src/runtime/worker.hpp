#pragma once
// The one interface every kind of daemon work implements: projections now, subscription
// partitions and snapshotters next. A Worker is a unit of work (kind, name) that the membership
// service assigns to this node or not, and that the Scheduler runs in slices on the thread pool.
//
// Contract, by thread:
// - loop thread: key(), set_assigned(), assigned() (the membership service; atomics inside).
// - pool, one call at a time per worker (the Scheduler never runs a worker twice at once):
//   run_slice() and describe().
// A worker that is not assigned gives its lease back at its next slice and does nothing else;
// the membership service wakes it on every gain and loss, so that happens promptly. Leases,
// checkpoints, retries and parking are core's (core/src/runtime/); a worker only drives them.

#include "status/status.hpp"

#include <rillflow/runtime/assignment.hpp>

#include <atomic>
#include <string>

namespace rillflow::runtime {

/// `key` in the schema of `tenant` ("": the base schema).
inline UnitKey in_tenant(UnitKey key, std::string tenant) {
  key.tenant = std::move(tenant);
  return key;
}

class Worker {
 public:
  explicit Worker(UnitKey key) : key_(std::move(key)) {}
  virtual ~Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// (kind, name, tenant): what the membership split and the status report go by.
  const UnitKey& key() const { return key_; }
  const std::string& name() const { return key_.name; }
  /// The tenant whose schema it works in ("": the base schema).
  const std::string& tenant() const { return key_.tenant; }

  /// Whether this node runs the unit (membership service, loop thread).
  void set_assigned(bool assigned) { assigned_ = assigned; }
  bool assigned() const { return assigned_; }

  /// Runs a bounded amount of work (a few batches) on the pool. Returns true when more work is
  /// waiting. Must not throw; checks `stop` between batches.
  virtual bool run_slice(const std::atomic<bool>& stop) = 0;

  /// The metrics hook: fills `view` with this unit's stored state and figures (pool; may read
  /// the database, must not write it). Throws on a database failure.
  virtual void describe(status::WorkerView& view) const = 0;

  /// Why it is not processing now (idle, paused, backoff, leased_by_other, error...).
  virtual std::string last_outcome() const = 0;

  /// Gives back what the worker holds between slices (leases, group membership) before it is
  /// dropped by a reload or a drain (pool, no slice running). Default: nothing is held.
  virtual void release() {}

 private:
  UnitKey key_;
  std::atomic<bool> assigned_{false};
};

}  // namespace rillflow::runtime
