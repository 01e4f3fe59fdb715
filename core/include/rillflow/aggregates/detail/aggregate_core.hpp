#pragma once
// The non-template side of AggregateRepository and of session aggregate commits.

#include <rillflow/events/event.hpp>
#include <rillflow/fwd.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rillflow::aggregates_detail {

/// Folds the state after a commit: starts from the snapshot body (or the aggregate's new state
/// when null), applies `tail`, runs the validator (throwing on rejection) and returns the
/// state as JSON when `want_json` (else null).
using Folder = std::function<Json(const Json* snapshot_body, const std::vector<EventEnvelope>& tail,
                                  bool want_json)>;

/// One aggregate commit: an append plus, when `fold` is set, validation of the resulting state
/// and a snapshot every `snapshot_every` events (0: never).
struct CommitRequest {
  Uuid stream_id{};
  Expected expected = Expected::any();
  std::vector<Event> events;
  AppendOptions options;
  std::int64_t snapshot_every = 0;
  bool snapshots_readable = false;  ///< the fold can start from a stored snapshot body
  Folder fold;
};

/// A stored snapshot and the events after it.
struct SnapshotAndTail {
  std::optional<Json> body;
  std::int64_t version = 0;
  std::vector<EventEnvelope> tail;
};

/// Throws Error (kInvalidArgument) saying the validator rejected the stream's new state.
[[noreturn]] void throw_rejected(const Uuid& stream_id, const std::string& reason);

class AggregateCore {
 public:
  explicit AggregateCore(std::shared_ptr<const detail::StoreState> state)
      : state_(std::move(state)) {}

  /// Appends and, when requested, validates and snapshots in one transaction.
  AppendResult commit(const CommitRequest& request) const;
  /// Every event of the stream.
  std::vector<EventEnvelope> read_all(const Uuid& stream_id) const;
  /// The stream's snapshot (if any) and only the events after it.
  SnapshotAndTail read_snapshot_and_tail(const Uuid& stream_id) const;
  /// The stored snapshot's version (nullopt when none).
  std::optional<std::int64_t> snapshot_version(const Uuid& stream_id) const;
  /// Store-level session defaults (AppendOptions) for session commits.
  const std::shared_ptr<const detail::StoreState>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<const detail::StoreState> state_;
};

}  // namespace rillflow::aggregates_detail
