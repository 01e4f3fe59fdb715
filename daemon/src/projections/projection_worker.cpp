#include "projections/projection_worker.hpp"

#include <rillflow/error.hpp>

#include <spdlog/spdlog.h>

namespace rillflow::projections {

namespace {
constexpr int kBatchesPerSlice = 8;  // then yield to the scheduler (fairness, drain checks)
}

ProjectionWorker::ProjectionWorker(std::shared_ptr<ProjectionDaemon> daemon, std::string name,
                                   metrics::DaemonMetrics& metrics, std::string tenant)
    : Worker({kKind, name, std::move(tenant)}),
      daemon_(std::move(daemon)),
      series_(metrics.projection(key().name, key().tenant)) {}

bool ProjectionWorker::run_slice(const std::atomic<bool>& stop) {
  if (!assigned()) {
    try {
      daemon_->release_lease(name());  // a no-op unless it was ours
    } catch (const std::exception& e) {
      spdlog::debug("projection {}: releasing the lease failed: {}", name(), e.what());
    }
    std::lock_guard lock(mutex_);
    last_outcome_ = "assigned_elsewhere";
    return false;
  }
  for (int i = 0; i < kBatchesPerSlice && !stop; ++i) {
    TickResult r;
    const auto started = std::chrono::steady_clock::now();
    try {
      r = daemon_->tick_once(name());
    } catch (const std::exception& e) {
      // A database outage or a failing prepare hook: logged (at most every 10 s), retried at the
      // next wakeup. The checkpoint and the lease are intact.
      const auto now = std::chrono::steady_clock::now();
      std::lock_guard lock(mutex_);
      last_outcome_ = "error";
      if (now - last_error_log_ > std::chrono::seconds(10)) {
        spdlog::warn("projection {}: {}", name(), e.what());
        last_error_log_ = now;
      }
      return false;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    {
      std::lock_guard lock(mutex_);
      last_outcome_ = std::string(to_string(r.outcome));
    }
    if (r.failed > 0) {
      series_.retries->Increment(static_cast<double>(r.failed));
      spdlog::warn("projection {}: {} event(s) failed ({})", name(), r.failed,
                   to_string(r.outcome));
    }
    if (r.outcome != TickOutcome::kProcessed) return false;
    series_.processed->Increment(static_cast<double>(r.processed));
    series_.batch_duration->Observe(seconds);
  }
  return !stop;  // more may be waiting
}

void ProjectionWorker::describe(status::WorkerView& view) const {
  view.kind = kKind;
  view.name = name();
  view.status = daemon_->status(name());
  view.metrics = daemon_->metrics(name());
  if (view.metrics.dlq_count > 0) {
    const auto oldest = daemon_->dlq_list(name(), 1);
    if (!oldest.empty()) view.dlq_oldest_error = oldest.front().error;
  }
  view.owned = view.status && view.status->lease_owner == daemon_->owner_id();
  view.shadow_rebuild = daemon_->shadow_rebuild_progress(name());
}

std::string ProjectionWorker::last_outcome() const {
  std::lock_guard lock(mutex_);
  return last_outcome_;
}

}  // namespace rillflow::projections
