#pragma once
// What rillflowd knows about itself, refreshed off the loop thread and read by the HTTP routes
// without touching the database.

#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/projections/projections.hpp>
#include <rillflow/subscriptions/subscriptions.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rillflow::status {

/// What a snapshotter worker knows of its last run (kind "snapshotter"; nothing is read from the
/// database for it).
struct SnapshotterView {
  std::optional<std::chrono::system_clock::time_point> last_run_at;  ///< when the last run ended
  std::size_t candidates = 0;                                        ///< the last run's report
  std::size_t written = 0;
  std::size_t superseded = 0;
  std::size_t failures = 0;
  std::int64_t max_events_since_snapshot = 0;
  double duration_seconds = 0;
  bool lease_held_elsewhere = false;
  std::string last_error;  ///< the last failure (a folder's or the database's); empty: none yet
  std::optional<std::chrono::system_clock::time_point> last_error_at;
  std::int64_t interval_ms = 0;
};

/// What a subscription unit (kind "subscription") reports.
struct SubscriptionView {
  std::string subscription;
  std::string group;     ///< "" without a group
  int partition = -1;    ///< -1: the subscription's or the unpartitioned group's only unit
  std::string ack;       ///< after_handler | in_transaction
  bool holding = false;  ///< this node runs the unit's subscriber now
  /// The group's figures (members, partitions with owner and checkpoint, lag, in flight), read
  /// by the unit of the lowest partition only; for a subscription without a group, its figures
  /// as a group "" with no members.
  std::optional<GroupStatus> group_status;
  std::uint64_t delivered = 0;  ///< this process's counts for this unit
  std::uint64_t acked = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t parked = 0;
  std::string last_error;
};

struct WorkerView {
  std::string kind = "projection";
  std::string name;
  std::string tenant;  ///< the tenant whose schema it works in ("": the base schema)
  std::optional<ProjectionStatus> status;
  ProjectionMetrics metrics;
  bool owned = false;              ///< this process holds the lease
  bool assigned = false;           ///< the runtimes sharing the registry gave it to this one
  bool running = false;            ///< a batch is in flight now
  double running_for_seconds = 0;  ///< how long the current batch has been running
  std::string
      waiting_reason;  ///< why it is not processing: idle, paused, backoff, leased_by_other...
  SnapshotterView snapshotter;   ///< kind "snapshotter" only
  std::string dlq_oldest_error;  ///< the error of the oldest dead-lettered event (projections)
  /// The oldest open appending transaction holding this consumer back (its stored unit has
  /// consumed a tick in which that transaction was in progress); empty when nothing does.
  /// Filled by the status refresh from one Projections::blocked_consumers() statement.
  std::optional<FeedBlocker> blocked_by;
  std::size_t blockers = 0;  ///< how many open transactions hold it back
  bool stalled() const { return blocked_by.has_value(); }
  double blocked_seconds() const { return blocked_by ? blocked_by->blocked_seconds : 0.0; }
  SubscriptionView subscription;  ///< kind "subscription" only
  /// A shadow rebuild of this projection in progress (`projections rebuild NAME --shadow`).
  std::optional<ShadowRebuildProgress> shadow_rebuild;
};

struct StatusSnapshot {
  bool started = false;   ///< the database was reached once and the workers were built
  bool draining = false;  ///< SIGTERM received
  bool db_ok = false;
  std::string db_error;
  /// What kind of failure db_error is: "unreachable" (no connection), "busy" (no free pooled
  /// connection in time) or "error" (connected, but PostgreSQL rejected a statement).
  std::string db_failure = "unreachable";
  bool schema_ok = false;
  std::vector<std::string> schema_problems;
  std::vector<std::string> stuck;  ///< workers whose batch runs longer than the stuck threshold
  std::string owner;
  std::vector<std::string> live_nodes;  ///< owner ids of the runtimes sharing the projections
  /// Tenants listed in `tenants:` that are not provisioned (the daemon is not ready).
  std::vector<std::string> missing_tenants;
  std::string version;
  std::vector<WorkerView> workers;
  std::chrono::system_clock::time_point refreshed_at{};
};

/// The db_failure kind of an exception caught from a database call.
std::string classify_db_failure(const std::exception& e);

/// Why the daemon is not ready (empty when it is): /health/ready, /status and rillflow_ready.
std::string unready_reason(const StatusSnapshot& status);

}  // namespace rillflow::status
