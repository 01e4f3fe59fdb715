#pragma once
// SnapshotFolder: what the snapshotter calls to fold a stream's events into its new state.

#include <rillflow/aggregates/aggregate.hpp>
#include <rillflow/aggregates/aggregate_repository.hpp>
#include <rillflow/events/event.hpp>
#include <rillflow/json.hpp>

#include <span>

namespace rillflow {

/// Folds events into an aggregate's state, as JSON (the form snapshots are stored in).
///
/// fold() is given the state the stream had before `events` (the stored snapshot's body, or
/// null when the stream has none: start from the aggregate's new state) and the next events of
/// the stream in stream_seq order, and returns the state after them: a JSON object or array.
/// Folding in several calls (state after the first chunk fed to the second) must give the same
/// state as one call. It may throw: the snapshotter reports that stream as failed and moves on.
/// A Snapshotter calls its folder from one thread at a time.
class SnapshotFolder {
 public:
  virtual ~SnapshotFolder() = default;
  virtual Json fold(const Json* state, std::span<const EventEnvelope> events) = 0;
};

/// The folder of any aggregate an AggregateRepository<A> loads: the same apply() over the same
/// events, from the same snapshot bodies (so load_with_snapshot(id) reads what it writes).
template <SnapshotAggregate A>
class AggregateFolder final : public SnapshotFolder {
 public:
  AggregateFolder() = default;
  /// For symmetry with the repository the aggregate is loaded through (nothing is kept).
  explicit AggregateFolder(const AggregateRepository<A>&) {}
  /// Plugin settings (RILLFLOW_FOLDER_PLUGIN): an aggregate folder takes none.
  explicit AggregateFolder(const Json&) {}

  Json fold(const Json* state, std::span<const EventEnvelope> events) override {
    A aggregate = state != nullptr ? json_to<A>(*state) : A{};
    for (const auto& e : events) aggregate.apply(e);
    return json_from(aggregate);
  }
};

}  // namespace rillflow
