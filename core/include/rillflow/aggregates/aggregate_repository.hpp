#pragma once
// Loads and commits aggregates: fold a stream into state, append with validation, snapshot.

#include <rillflow/aggregates/aggregate.hpp>
#include <rillflow/aggregates/detail/aggregate_core.hpp>
#include <rillflow/store.hpp>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rillflow {

/// Folds streams into aggregates of type A and commits new events for them.
/// Cheap to copy; thread-safe (a validator must be too).
///
/// Every commit path (commit, commit_and_snapshot, and the session's) runs in one transaction:
/// append, then — when a validator is set or a snapshot may be due — fold the stream's real
/// state after the new events (from the latest snapshot plus the events after it), run the
/// validator on it, and write the snapshot from that state. A rejection rolls everything back.
/// Throws VersionConflict, IdempotencyConflict, Error (kInvalidArgument) for a rejected state,
/// and rillflow::Error for database failures.
template <Aggregate A>
class AggregateRepository {
 public:
  /// Returns a reason to reject the state, or nullopt to accept it.
  using Validator = std::function<std::optional<std::string>(const A&)>;

  explicit AggregateRepository(const Store& store) : core_(store.shared_state()) {}

  /// A copy whose commits validate the state after the new events.
  AggregateRepository with_validator(Validator validator) const {
    auto copy = *this;
    copy.validator_ = std::move(validator);
    return copy;
  }

  /// The state folded from every event of the stream (A{} when it has none).
  A load(const Uuid& id) const {
    A state{};
    for (const auto& e : core_.read_all(id)) state.apply(e);
    return state;
  }

  /// The state from the stream's snapshot plus only the events after it; the same result as
  /// load(), much faster on long streams.
  A load_with_snapshot(const Uuid& id) const requires SnapshotAggregate<A> {
    auto found = core_.read_snapshot_and_tail(id);
    A state = found.body ? json_to<A>(*found.body) : A{};
    for (const auto& e : found.tail) state.apply(e);
    return state;
  }

  /// Appends `events`; validates the resulting state when a validator is set.
  AppendResult commit(const Uuid& id, Expected expected, std::vector<Event> events,
                      AppendOptions options = {}) const {
    return core_.commit(request(id, expected, std::move(events), std::move(options), 0));
  }

  /// Appends `events` expecting the stream to be at agg.version() (the state the caller
  /// decided on), then writes a snapshot of the real state when `every_n` or more events have
  /// come since the last snapshot. every_n == 0 never snapshots.
  AppendResult commit_and_snapshot(const Uuid& id, const A& agg, std::vector<Event> events,
                                   std::int64_t every_n,
                                   AppendOptions options = {}) const requires SnapshotAggregate<A> {
    return core_.commit(request(id, Expected::exact(static_cast<std::int64_t>(agg.version())),
                                std::move(events), std::move(options), every_n));
  }

  /// The commit as a request (what sessions stage).
  aggregates_detail::CommitRequest request(const Uuid& id, Expected expected,
                                           std::vector<Event> events, AppendOptions options,
                                           std::int64_t every_n) const {
    aggregates_detail::CommitRequest r;
    r.stream_id = id;
    r.expected = expected;
    r.events = std::move(events);
    r.options = std::move(options);
    r.snapshot_every = every_n < 0 ? 0 : every_n;
    r.snapshots_readable = SnapshotAggregate<A>;
    if (validator_ || r.snapshot_every > 0) r.fold = folder(id);
    return r;
  }

 private:
  aggregates_detail::Folder folder(const Uuid& id) const {
    return
        [validator = validator_, id](const Json* snapshot, const std::vector<EventEnvelope>& tail,
                                     bool want_json) -> Json {
          A state{};
          if constexpr (SnapshotAggregate<A>) {
            if (snapshot != nullptr) state = json_to<A>(*snapshot);
          }
          for (const auto& e : tail) state.apply(e);
          if (validator) {
            if (auto reason = validator(state)) aggregates_detail::throw_rejected(id, *reason);
          }
          if constexpr (SnapshotAggregate<A>) {
            if (want_json) return json_from(state);
          }
          return nullptr;
        };
  }

  aggregates_detail::AggregateCore core_;
  Validator validator_;
};

}  // namespace rillflow
