#pragma once
// Store::projections(): what an application or an operator asks about projections without
// running them: wait until one has handled an event (read-your-writes), and why one waits.

#include <rillflow/error.hpp>
#include <rillflow/events/event.hpp>
#include <rillflow/fwd.hpp>
#include <rillflow/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rillflow {

/// How wait_for() polls: the first re-check after `initial_interval`, each next one after twice
/// the previous interval, at most `max_interval`. One cheap indexed statement per check.
struct ProjectionWaitOptions {
  std::chrono::milliseconds initial_interval{1};
  std::chrono::milliseconds max_interval{50};
};

/// What wait_for() saw when the projection had handled the event.
struct ProjectionWaitResult {
  std::int64_t position = 0;            ///< the global_seq waited for
  bool parked = false;                  ///< the event failed and sits in the DLQ
  std::chrono::microseconds waited{0};  ///< from the call to the successful check
  int checks = 0;                       ///< statements run (1: it was handled already)
};

/// wait_for() ran out of time. code() is ErrorCode::kTimeout; what() says what is left, e.g.
/// "projection 'orders' has not handled global_seq 120 after 5000 ms: it is at 117 (3 committed
/// events between), paused".
class ProjectionWaitTimeout : public Error {
 public:
  ProjectionWaitTimeout(std::string message, std::string projection, std::int64_t position,
                        std::int64_t projection_at, std::int64_t behind, bool committed);
  const std::string& projection() const noexcept { return projection_; }
  std::int64_t position() const noexcept { return position_; }
  /// The projection's last handled global_seq when it gave up.
  std::int64_t projection_at() const noexcept { return projection_at_; }
  /// Committed events the projection has still to handle up to `position` (a lower bound when
  /// other appends commit meanwhile).
  std::int64_t behind() const noexcept { return behind_; }
  /// False when no committed event has that global_seq (not committed yet, or rolled back).
  bool committed() const noexcept { return committed_; }

 private:
  std::string projection_;
  std::int64_t position_, projection_at_, behind_;
  bool committed_;
};

/// An open transaction that appended events and has not committed: a consumer that has passed
/// a tick in which it was in progress cannot deliver its events (nor, within their streams,
/// anything after them) until it commits or rolls back. Fields are empty where pg_stat_activity
/// hides them from this role (other roles' sessions without pg_read_all_stats).
struct FeedBlocker {
  std::optional<int> pid;             ///< backend process id (empty for a prepared transaction)
  std::int64_t xid = 0;               ///< top-level transaction id (32-bit, as pg_locks shows it)
  std::optional<double> age_seconds;  ///< now() - xact_start
  std::optional<std::string> state;   ///< "idle in transaction", "active", ...
  std::optional<std::string> application_name;
  /// The start (at most 120 characters) of its current/last statement, secrets redacted.
  std::optional<std::string> query;
  /// How long it has held the feed back: seconds since the first tick that saw it in progress
  /// (the first moment a later commit was delivered before its events).
  double blocked_seconds = 0;
  /// "waiting for transaction 7731 (pid 4412, open 42 s)".
  std::string message() const;
};

/// As a JSON object with "message"; fields the role may not see are left out.
Json to_json(const FeedBlocker& blocker);

/// One consumer held back by one open appending transaction (see Projections::
/// blocked_consumers). `kind` and `name` are the stored unit's: "projection" and the projection's
/// name, "subscription" and the partition's unit name.
struct BlockedConsumer {
  std::string kind;
  std::string name;
  FeedBlocker blocker;
};

/// Read-only questions about stored projections. Obtained from Store::projections(); cheap to
/// copy; thread-safe. Names are those of stored checkpoints (a projection a runtime has run
/// once); an unknown one throws NotFound, an empty one kInvalidArgument.
class Projections {
 public:
  explicit Projections(std::shared_ptr<const detail::StoreState> state);

  /// Returns once projection `name` has handled the event at global_seq `position`, i.e. its
  /// stored position covers that event: the event's transaction is visible in the snapshot of
  /// the tick the projection has consumed, or the event lies in the batch the projection is
  /// paging through at or below its `after_seq`. That is exact under the feed's tick ordering
  /// (a last_global_seq >= position is not: a lower position can commit after a higher one).
  /// An event the projection filtered out or parked in the DLQ counts as handled (see
  /// ProjectionWaitResult::parked). `position` 0 returns at once. Polls with backoff (options);
  /// throws ProjectionWaitTimeout (kTimeout) after `timeout`, also when no committed event has
  /// that position by then (rolled back, or not committed yet). Other events with lower
  /// positions that commit later may still be pending when it returns.
  ProjectionWaitResult wait_for(const std::string& name, std::int64_t position,
                                std::chrono::milliseconds timeout,
                                ProjectionWaitOptions options = {}) const;
  /// Read-your-writes: waits for the last event of `appended` (every event of one append is
  /// delivered in one batch, in order).
  ProjectionWaitResult wait_for(const std::string& name, const AppendResult& appended,
                                std::chrono::milliseconds timeout,
                                ProjectionWaitOptions options = {}) const;

  /// The open appending transactions projection `name` waits on, oldest first: those in
  /// progress in the snapshot of the newest tick it has consumed (so it has delivered later
  /// commits but not their events). Empty when nothing holds it back. One statement over
  /// pg_locks and pg_stat_activity; never writes.
  std::vector<FeedBlocker> blocked_by(const std::string& name) const;

  /// blocked_by() for every stored consumer of every kind (projections, subscription
  /// partitions) in one statement, for a status refresh: one entry per (consumer, blocker),
  /// ordered by kind, name, then oldest blocker first. Empty when nothing holds any consumer
  /// back (and then it costs one read of pg_locks). Never writes.
  std::vector<BlockedConsumer> blocked_consumers() const;

 private:
  std::shared_ptr<const detail::StoreState> state_;
};

}  // namespace rillflow
