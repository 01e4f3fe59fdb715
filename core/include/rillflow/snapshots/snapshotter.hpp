#pragma once
// Snapshotter: background compaction. Writes snapshots of the streams that have gone furthest
// past their last snapshot, folded by a SnapshotFolder, under a runtime lease.

#include <rillflow/fwd.hpp>
#include <rillflow/snapshots/snapshot_folder.hpp>
#include <rillflow/uuid.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rillflow {

/// Which streams a snapshotter compacts.
struct StreamFilter {
  /// Only streams with an alias (Store::resolve_stream_alias) starting with this, e.g.
  /// "orders:"; empty: every stream.
  std::string alias_prefix;
};

struct SnapshotterConfig {
  /// A stream is a candidate once this many events (1 or more) came after its last snapshot.
  std::int64_t threshold_events = 200;
  /// Candidates handled per compact_once() (1 or more), largest backlog first.
  std::size_t batch_size = 200;
  StreamFilter streams;
  /// The unit of work's name (kind 'snapshotter'): snapshotters of one name share a lease, so
  /// only one process runs it at a time. 1-200 characters.
  std::string name = "default";
  /// Lease lifetime: a process that died holding it blocks the name this long.
  std::chrono::milliseconds lease_ttl{30000};
  /// Lease owner id; empty: host, pid and a random suffix.
  std::string owner;
};

/// A stream whose folder threw (or returned something that is not a state).
struct SnapshotFailure {
  Uuid stream_id{};
  std::int64_t version = 0;  ///< the version it was folding to
  std::string error;
};

/// What a compact_once() or run_until_idle() call did.
struct CompactionReport {
  std::size_t rounds = 0;      ///< candidate queries run
  std::size_t candidates = 0;  ///< streams taken up (each at most once per call)
  std::size_t written = 0;     ///< snapshots stored
  /// Candidates whose snapshot another writer had already moved to this version or later.
  std::size_t superseded = 0;
  std::int64_t events_folded = 0;
  /// The largest events-since-snapshot among the candidates taken up.
  std::int64_t max_events_since_snapshot = 0;
  std::vector<SnapshotFailure> failures;
  /// Another process holds this snapshotter's lease: nothing was done.
  bool lease_held_elsewhere = false;
  /// The lease was lost during the call (taken over after expiry): the call stopped.
  bool lease_lost = false;
  std::chrono::microseconds duration{0};
};

/// Compacts streams into snapshots: candidates are the streams whose version is at least
/// threshold_events past their last snapshot, found through an index (streams.snapshot_version,
/// migration 6), never by scanning events.
///
/// Each snapshot is the folder's state at exactly the stream's version when the candidate was
/// read (snapshot body + the events after it up to that version), also while writers keep
/// appending; it replaces the stored one only when newer. A call holds the lease of unit
/// ('snapshotter', name) from its start, renews it while it runs, writes under its fence and
/// releases it at the end, so two processes never compact under one name at once.
///
/// Throws rillflow::Error for database failures (the call ends; snapshots already written
/// stay). Not thread-safe: one call at a time per instance.
class Snapshotter {
 public:
  /// Called after each stream with the report so far (for progress output).
  using Progress = std::function<void(const CompactionReport&)>;

  /// Throws Error (kInvalidArgument) for a null folder, threshold < 1, batch 0 or a bad name.
  Snapshotter(const Store& store, std::shared_ptr<SnapshotFolder> folder,
              SnapshotterConfig config = {});
  ~Snapshotter();
  Snapshotter(Snapshotter&&) noexcept;
  Snapshotter& operator=(Snapshotter&&) noexcept;

  /// Handles up to batch_size candidates, largest backlog first.
  CompactionReport compact_once(const Progress& progress = {});
  /// Rounds of compact_once until no candidate is left. Always ends: each stream is taken up at
  /// most once per call (a failing one is reported and skipped), and the call handles at most
  /// as many streams as were candidates when it started plus one batch; work that appears
  /// meanwhile beyond that is left for the next call.
  CompactionReport run_until_idle(const Progress& progress = {});

  const SnapshotterConfig& config() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rillflow
