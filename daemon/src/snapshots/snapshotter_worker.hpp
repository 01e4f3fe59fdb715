#pragma once

#include "metrics/daemon_metrics.hpp"
#include "runtime/worker.hpp"

#include <rillflow/snapshots/snapshotter.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace rillflow::snapshots {

/// One `snapshotters:` entry as a runtime::Worker of kind "snapshotter": while membership assigns
/// it to this node, runs the library's Snapshotter::compact_once() (at most batch candidates)
/// once every interval, and records the report in its metrics and status. The lease inside the
/// library fences it (a call takes the lease of ('snapshotter', name) and gives it back at its
/// end), so between runs nothing is held. A failing folder is reported in the run's failures and
/// its stream waits for the next interval, like any other; a database failure too.
class SnapshotterWorker final : public runtime::Worker {
 public:
  static constexpr const char* kKind = "snapshotter";
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  /// `clock` decides when a run is due (steady_clock::now when empty).
  SnapshotterWorker(Snapshotter snapshotter, std::chrono::milliseconds interval,
                    metrics::DaemonMetrics& metrics, std::string tenant = {}, Clock clock = {});
  /// Runs compact_once() when the interval since the last run (or the start) has passed, else
  /// nothing. Always returns false: the next run comes from a later wakeup (the polling timer).
  bool run_slice(const std::atomic<bool>& stop) override;
  void describe(status::WorkerView& view) const override;
  std::string last_outcome() const override;

 private:
  Snapshotter snapshotter_;
  std::chrono::milliseconds interval_;
  metrics::SnapshotterSeries& series_;
  Clock clock_;
  std::optional<std::chrono::steady_clock::time_point> last_run_;  // run_slice only
  std::chrono::steady_clock::time_point last_error_log_{};         // run_slice only
  mutable std::mutex mutex_;                                       // guards the fields below
  status::SnapshotterView view_;
  std::string last_outcome_ = "idle";
};

}  // namespace rillflow::snapshots
