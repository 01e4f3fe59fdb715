#include "projection/projection_worker.hpp"

#include <rillflow/error.hpp>

#include <spdlog/spdlog.h>

namespace rillflow::projection {

namespace {
constexpr int kBatchesPerSlice = 8;  // then yield to the scheduler (fairness, drain checks)
}

ProjectionWorker::ProjectionWorker(std::shared_ptr<ProjectionDaemon> daemon, std::string name,
                                   metrics::DaemonMetrics& metrics)
    : daemon_(std::move(daemon)), name_(std::move(name)), series_(metrics.projection(name_)) {}

bool ProjectionWorker::run_slice(const std::atomic<bool>& stop) {
  if (!assigned_) {
    try {
      daemon_->release_lease(name_);  // a no-op unless it was ours
    } catch (const std::exception& e) {
      spdlog::debug("projection {}: releasing the lease failed: {}", name_, e.what());
    }
    std::lock_guard lock(mutex_);
    last_outcome_ = "assigned_elsewhere";
    return false;
  }
  for (int i = 0; i < kBatchesPerSlice && !stop; ++i) {
    TickResult r;
    const auto started = std::chrono::steady_clock::now();
    try {
      r = daemon_->tick_once(name_);
    } catch (const std::exception& e) {
      // A database outage or a failing prepare hook: logged (at most every 10 s), retried at the
      // next wakeup. The checkpoint and the lease are intact.
      const auto now = std::chrono::steady_clock::now();
      std::lock_guard lock(mutex_);
      last_outcome_ = "error";
      if (now - last_error_log_ > std::chrono::seconds(10)) {
        spdlog::warn("projection {}: {}", name_, e.what());
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
      spdlog::warn("projection {}: {} event(s) failed ({})", name_, r.failed, to_string(r.outcome));
    }
    if (r.outcome != TickOutcome::kProcessed) return false;
    series_.processed->Increment(static_cast<double>(r.processed));
    series_.batch_duration->Observe(seconds);
  }
  return !stop;  // more may be waiting
}

std::string ProjectionWorker::last_outcome() const {
  std::lock_guard lock(mutex_);
  return last_outcome_;
}

}  // namespace rillflow::projection
