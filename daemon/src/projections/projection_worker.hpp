#pragma once

#include "metrics/daemon_metrics.hpp"
#include "runtime/worker.hpp"

#include <rillflow/projections/projection_daemon.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace rillflow::projections {

/// One projection of the registry, as a runtime::Worker of kind "projection": ticks it through
/// the shared ProjectionDaemon (which holds the lease, checkpoint and retry logic) and records
/// its metrics.
class ProjectionWorker final : public runtime::Worker {
 public:
  static constexpr const char* kKind = "projection";
  /// `daemon` runs in the schema of `tenant` ("": the base schema).
  ProjectionWorker(std::shared_ptr<ProjectionDaemon> daemon, std::string name,
                   metrics::DaemonMetrics& metrics, std::string tenant = {});
  bool run_slice(const std::atomic<bool>& stop) override;
  void describe(status::WorkerView& view) const override;
  std::string last_outcome() const override;

 private:
  std::shared_ptr<ProjectionDaemon> daemon_;
  metrics::ProjectionSeries& series_;
  mutable std::mutex mutex_;
  std::string last_outcome_ = "idle";
  std::chrono::steady_clock::time_point last_error_log_{};
};

}  // namespace rillflow::projections
