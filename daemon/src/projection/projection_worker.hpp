#pragma once

#include "metrics/daemon_metrics.hpp"
#include "projection/worker.hpp"

#include <rillflow/projections/projection_daemon.hpp>

#include <memory>
#include <mutex>
#include <string>

namespace rillflow::projection {

/// One projection of the registry: ticks it through the shared ProjectionDaemon (which holds the
/// lease, checkpoint and retry logic) and records its metrics.
class ProjectionWorker final : public Worker {
 public:
  ProjectionWorker(std::shared_ptr<ProjectionDaemon> daemon, std::string name,
                   metrics::DaemonMetrics& metrics);
  const std::string& name() const override { return name_; }
  const char* kind() const override { return "projection"; }
  bool run_slice(const std::atomic<bool>& stop) override;
  /// The outcome of the last tick (idle, processed, paused, backoff, leased_by_other...).
  std::string last_outcome() const;
  /// Whether the runtimes sharing the projections gave this one to this process. An unassigned
  /// worker gives its lease back and does nothing.
  void set_assigned(bool assigned) { assigned_ = assigned; }
  bool assigned() const { return assigned_; }

 private:
  std::shared_ptr<ProjectionDaemon> daemon_;
  std::string name_;
  metrics::ProjectionSeries& series_;
  mutable std::mutex mutex_;
  std::string last_outcome_ = "idle";
  std::chrono::steady_clock::time_point last_error_log_{};
  std::atomic<bool> assigned_{false};
};

}  // namespace rillflow::projection
