#pragma once

#include <rillflow/events/event.hpp>
#include <rillflow/projections/projection_handler.hpp>
#include <rillflow/store.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rillflow {

/// What to do with an event whose retries are used up.
enum class FailurePolicy {
  kDeadLetter,  ///< park it in the DLQ and move on
  kStop,        ///< stop the projection until `resume`
};

/// Settings of one registered projection.
struct ProjectionOptions {
  std::size_t batch_size = 500;
  /// Only these event types reach the handler (others still advance the checkpoint); empty: all.
  std::vector<std::string> event_types;
  /// Attempts per event before the failure policy applies (1 = no retry).
  int max_attempts = 5;
  std::chrono::milliseconds retry_base_delay{1000};   ///< doubled per attempt...
  std::chrono::milliseconds retry_max_delay{300000};  ///< ...up to this
  FailurePolicy on_failure = FailurePolicy::kDeadLetter;
};

/// Outcome of one tick of one projection.
enum class TickOutcome {
  kIdle,           ///< nothing new to process
  kProcessed,      ///< `processed` events were handled and checkpointed
  kPaused,         ///< paused by an operator
  kBackoff,        ///< waiting until `backoff_until` before retrying a failed event
  kLeasedByOther,  ///< another runtime holds the lease
  kStopped,        ///< stopped by the kStop failure policy; `resume` restarts it
};
std::string_view to_string(TickOutcome outcome) noexcept;

struct TickResult {
  TickOutcome outcome = TickOutcome::kIdle;
  std::size_t processed = 0;  ///< events handled (including filtered-out ones skipped)
  std::size_t failed = 0;     ///< events that failed this tick (retried later or dead-lettered)
  std::size_t parked = 0;     ///< events dead-lettered this tick
  /// With kBackoff: when the failed event is retried (on the runtime's clock).
  std::optional<std::chrono::system_clock::time_point> retry_at;
};

/// What run_until_idle() did. Converts to `processed`.
struct RunReport {
  std::size_t processed = 0;  ///< events handled
  std::size_t parked = 0;     ///< events dead-lettered on the way
  /// Committed events not handled when it returned (beyond each projection's last handled
  /// global_seq): a projection paused, stopped by policy, or leased by another runtime.
  std::int64_t remaining = 0;
  operator std::size_t() const noexcept { return processed; }  // NOLINT: keeps `n == run...()`
};

/// A projection's persisted state, as `status` / `list` show it.
struct ProjectionStatus {
  std::string name;
  FeedPosition position;
  std::int64_t last_global_seq = 0;  ///< highest global_seq handled so far
  bool paused = false;
  bool stopped = false;
  std::optional<std::string> lease_owner;
  std::optional<std::chrono::system_clock::time_point> lease_expires_at;
  std::int64_t lease_epoch = 0;
  int attempts = 0;  ///< failed attempts of the event at the head of the projection
  std::optional<std::chrono::system_clock::time_point> backoff_until;
  std::optional<std::string> last_error;
  std::chrono::system_clock::time_point updated_at;
};

/// Lag and DLQ figures of one projection.
struct ProjectionMetrics {
  std::string name;
  std::int64_t position = 0;  ///< last_global_seq
  std::int64_t head = 0;      ///< highest committed global_seq
  std::int64_t lag_events = 0;
  double lag_seconds = 0;  ///< age of the oldest event not yet handled (0 when caught up)
  std::int64_t dlq_count = 0;
  double dlq_oldest_age_seconds = 0;
};

/// One parked event.
struct DlqEntry {
  std::int64_t id = 0;
  std::string projection;
  EventEnvelope event;
  std::string error;
  int attempts = 0;
  std::chrono::system_clock::time_point failed_at;
  bool requeued = false;  ///< waiting to be redelivered once
};

/// How far a shadow rebuild has come (rebuild_shadow; `/status` shows it per projection).
/// Progress is counted in global_seq: `done` of `total`.
struct ShadowRebuildProgress {
  std::string name;
  std::string shadow_schema;          ///< where the new read model is being built
  std::int64_t done = 0;              ///< the highest global_seq the shadow has handled
  std::int64_t total = 0;             ///< the head of the feed (highest committed global_seq)
  double rate = 0;                    ///< global_seq per second since the rebuild started
  std::optional<double> eta_seconds;  ///< (total - done) / rate; none before any progress
  std::chrono::system_clock::time_point started_at;
};

/// Settings of one shadow rebuild.
struct ShadowRebuildOptions {
  /// Called after every batch of the build.
  std::function<void(const ShadowRebuildProgress&)> on_progress;
  /// Asked between batches: true stops the build before the swap, leaving the shadow (and the
  /// live read model) as they are; running rebuild_shadow again resumes it.
  std::function<bool()> should_stop;
  /// How long the swap waits for the locks of the live read model (readers hold them) per
  /// attempt; three attempts, then kTimeout with nothing changed.
  std::chrono::milliseconds lock_timeout{5000};
  /// How long the swap waits for the runtime holding the live projection's lease to let go.
  std::chrono::milliseconds takeover_timeout{60000};
};

/// What rebuild_shadow did.
struct ShadowRebuildReport {
  bool swapped = false;                ///< false: stopped by should_stop, the shadow kept
  std::size_t processed = 0;           ///< events handled by the shadow in this call
  std::int64_t last_global_seq = 0;    ///< where the live projection now continues
  std::vector<std::string> relations;  ///< the relations swapped in
  std::int64_t parked = 0;             ///< events the shadow parked (now the live DLQ)
};

/// As JSON objects (times as RFC 3339 UTC, absent values as null), for tools and endpoints.
Json to_json(const ProjectionStatus& status);
Json to_json(const ProjectionMetrics& metrics);
Json to_json(const ShadowRebuildProgress& progress);

class ProjectionDaemonBuilder;

/// Runs projections: reads the global feed (never skipping an event), hands each event to the
/// projection's handler and commits the handler's writes together with the checkpoint.
///
/// Several runtimes (processes) may run the same projections against one database: a lease per
/// projection (owner = host + pid + random id, expiry, fencing epoch) lets one at a time process
/// it, and a worker that lost its lease cannot commit. No session-level locks are used; behind
/// PgBouncer in transaction mode, use PgBouncer >= 1.21 with max_prepared_statements set. Admin
/// calls (pause, resume, reset_checkpoint, DLQ) work without a registered handler. Thread-safe:
/// ticks of different projections may run on different threads; ticks of one projection are
/// serialized.
class ProjectionDaemon {
 public:
  static ProjectionDaemonBuilder builder(Store store);
  /// A fresh owner id, "host:pid:random" (unique even across containers with equal pids).
  static std::string new_owner_id();
  ~ProjectionDaemon();
  ProjectionDaemon(ProjectionDaemon&&) noexcept;

  /// Processes at most one batch of `name`. Throws rillflow::Error for an unknown projection or
  /// a database failure (a failing handler is not an error: see TickResult).
  TickResult tick_once(const std::string& name);
  /// One tick of every registered projection, in registration order.
  std::map<std::string, TickResult> tick_all_once();
  /// Ticks until every committed event is handled or parked, or a projection cannot go on (paused,
  /// stopped by policy, leased elsewhere): retry backoffs are waited out (with the builder's
  /// sleeper). `on_progress(name, processed_so_far)` is called after every batch when given.
  RunReport run_until_idle(
      const std::function<void(const std::string&, std::size_t)>& on_progress = {});
  /// The same for the one projection `name` (NotFound when it is not registered).
  RunReport run_until_idle(const std::string& name,
                           const std::function<void(const std::string&, std::size_t)>& on_progress);
  /// Ticks in a loop until `stop` becomes true, sleeping `poll_interval` when idle.
  void run_loop(const std::atomic<bool>& stop,
                std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500));
  /// Gives up every lease this runtime holds (also done by the destructor).
  void release_leases();
  /// Deletes ticks every stored projection position has passed (and older than ten minutes, for
  /// ad-hoc feed readers). run_loop() calls it once a minute; rillflowd too.
  void prune_ticks();

  /// Gives up the lease of one projection (a no-op when not held).
  void release_lease(const std::string& name);

  // Sharing projections between runtimes (rillflowd uses these; see docs/daemon.md).
  /// Records this runtime as alive and returns the owner ids of every live runtime (heartbeat
  /// younger than 2.5 heartbeat intervals, at most the lease TTL), sorted. Forgets runtimes
  /// silent for an hour. Call it once per heartbeat interval.
  std::vector<std::string> heartbeat();
  /// Removes this runtime from the live set (on shutdown), so the others take over at once.
  void leave();
  /// The registered projections this runtime should run when `live` runtimes share them
  /// (runtime::assign_units: rendezvous hashing with bounded loads); all of them when this
  /// runtime is not in `live`.
  std::vector<std::string> assignment(const std::vector<std::string>& live) const;

  std::vector<std::string> registered() const;
  const std::string& owner_id() const;

  // Admin. A name that is neither registered nor stored throws NotFound and writes nothing; an
  // empty name throws kInvalidArgument.
  std::vector<ProjectionStatus> list() const;
  std::optional<ProjectionStatus> status(const std::string& name) const;
  void pause(const std::string& name);
  void resume(const std::string& name);
  /// Moves the checkpoint so that every event with global_seq > `after_global_seq` is handled
  /// again (0: from the start). Does not touch the read model. Refuses a negative value or one
  /// beyond the head (kInvalidArgument).
  void reset_checkpoint(const std::string& name, std::int64_t after_global_seq);
  /// Under the lease: handler reset(), checkpoint to the start, DLQ cleared (run_until_idle()
  /// then replays). Throws LeaseHeldElsewhere when another runtime holds the lease, LeaseLost
  /// when it is taken over meanwhile, NotFound when no handler is registered under `name`.
  void rebuild(const std::string& name);
  /// Rebuilds the read model beside the live one, which keeps serving (and advancing) meanwhile:
  /// the handler runs from the start of the feed against a shadow schema (its own checkpoint,
  /// lease and DLQ, unit kind "projection_shadow"), then, caught up to the head, one transaction
  /// moves the shadow's relations over the live ones of the same names and the live checkpoint
  /// to the shadow's; the old relations are dropped after. The live projection is paused only
  /// for the swap (its lease taken over from whichever runtime holds it, which resumes it after).
  /// Throws kInvalidArgument when the handler does not support_shadow_rebuild() (nothing
  /// written), LeaseHeldElsewhere when another shadow rebuild of `name` runs, kTimeout when the
  /// live read model could not be locked (nothing swapped), and rillflow::Error when the shadow
  /// build stops on a failing event (kStop policy): the live read model is untouched in every
  /// case, and the shadow kept for a rerun or cancel_shadow_rebuild(). Runs in the caller's
  /// thread. See docs/projections.md, "Shadow rebuilds".
  ShadowRebuildReport rebuild_shadow(const std::string& name,
                                     const ShadowRebuildOptions& options = {});
  /// Drops the shadow of `name` (its schema, checkpoint and DLQ) and leaves the live read model
  /// untouched; a running build fails at its next batch. False when there was none.
  bool cancel_shadow_rebuild(const std::string& name);
  /// The progress of the shadow rebuild of `name`, when one exists. Reads only.
  std::optional<ShadowRebuildProgress> shadow_rebuild_progress(const std::string& name) const;
  std::vector<DlqEntry> dlq_list(const std::string& name, std::size_t limit = 100) const;
  /// Marks one DLQ entry for redelivery: the next tick hands that event (only it) to the handler
  /// once; on success it leaves the DLQ, on failure it stays with attempts + 1.
  bool dlq_requeue(const std::string& name, std::int64_t id);
  bool dlq_delete(const std::string& name, std::int64_t id);
  ProjectionMetrics metrics(const std::string& name) const;

  struct Impl;

 private:
  friend class ProjectionDaemonBuilder;
  explicit ProjectionDaemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ProjectionDaemonBuilder {
 public:
  explicit ProjectionDaemonBuilder(Store store) : store_(std::move(store)) {}
  /// Default batch size of projections registered afterwards without options.
  ProjectionDaemonBuilder& batch_size(std::size_t n) {
    defaults_.batch_size = n;
    return *this;
  }
  /// Use another schema than the store's (the store's pool is reused).
  ProjectionDaemonBuilder& schema(std::string name) {
    schema_ = std::move(name);
    return *this;
  }
  /// How long a lease lasts without renewal (default 30 s); renewed by every batch.
  ProjectionDaemonBuilder& lease_ttl(std::chrono::milliseconds ttl) {
    lease_ttl_ = ttl;
    return *this;
  }
  /// How often the caller heartbeats (default 1 s): a runtime silent for 2.5 intervals is not live.
  ProjectionDaemonBuilder& heartbeat_interval(std::chrono::milliseconds interval) {
    heartbeat_interval_ = interval;
    return *this;
  }
  /// The clock retry backoffs are computed and compared with (default: system_clock::now).
  ProjectionDaemonBuilder& clock(std::function<std::chrono::system_clock::time_point()> now) {
    clock_ = std::move(now);
    return *this;
  }
  /// How run_until_idle() waits for a backoff (default: std::this_thread::sleep_for). A test
  /// passes one that advances its clock.
  ProjectionDaemonBuilder& sleeper(std::function<void(std::chrono::milliseconds)> sleep) {
    sleeper_ = std::move(sleep);
    return *this;
  }
  /// True when something else (rillflowd's ticker) creates feed ticks; by default each batch
  /// creates one when events committed since the newest.
  ProjectionDaemonBuilder& external_ticker(bool external) {
    external_ticker_ = external;
    return *this;
  }
  /// Overrides the generated owner id (host:pid:random).
  ProjectionDaemonBuilder& owner_id(std::string id) {
    owner_ = std::move(id);
    return *this;
  }
  ProjectionDaemonBuilder& register_projection(std::string name,
                                               std::shared_ptr<ProjectionHandler> handler);
  ProjectionDaemonBuilder& register_projection(std::string name,
                                               std::shared_ptr<ProjectionHandler> handler,
                                               ProjectionOptions options);
  ProjectionDaemon build();

 private:
  struct Registration {
    std::string name;
    std::shared_ptr<ProjectionHandler> handler;
    std::optional<ProjectionOptions> options;
  };
  Store store_;
  std::optional<std::string> schema_;
  ProjectionOptions defaults_;
  std::chrono::milliseconds lease_ttl_{30000};
  std::chrono::milliseconds heartbeat_interval_{1000};
  std::function<std::chrono::system_clock::time_point()> clock_;
  std::function<void(std::chrono::milliseconds)> sleeper_;
  bool external_ticker_ = false;
  std::string owner_;
  std::vector<Registration> registrations_;
};

}  // namespace rillflow
