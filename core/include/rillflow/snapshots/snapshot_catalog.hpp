#pragma once
// SnapshotCatalog: what is stored: per stream its version, its snapshot's version and size.

#include <rillflow/fwd.hpp>
#include <rillflow/uuid.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rillflow {

struct SnapshotStatus {
  Uuid stream_id{};
  std::optional<std::string> alias;
  std::int64_t version = 0;           ///< the stream's version
  std::int64_t snapshot_version = 0;  ///< 0: no snapshot
  std::int64_t events_since_snapshot = 0;
  std::int64_t size_bytes = 0;  ///< the snapshot body's stored size (0: none)
  std::optional<std::chrono::system_clock::time_point> snapshot_at;
};

/// Read-only views of snapshots (reads never write). Thread-safe; throws rillflow::Error for
/// database failures.
class SnapshotCatalog {
 public:
  explicit SnapshotCatalog(const Store& store);

  /// The stream's status; nullopt when the stream has no events.
  std::optional<SnapshotStatus> status(const Uuid& stream_id) const;
  /// Streams with at least `min_events_since_snapshot` events since their last snapshot (0:
  /// every stream), largest backlog first, at most `limit`. Served by the candidate index.
  std::vector<SnapshotStatus> list(std::size_t limit,
                                   std::int64_t min_events_since_snapshot = 0) const;

 private:
  std::shared_ptr<const detail::StoreState> state_;
};

}  // namespace rillflow
