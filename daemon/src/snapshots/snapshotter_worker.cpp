#include "snapshots/snapshotter_worker.hpp"

#include <spdlog/spdlog.h>

namespace rillflow::snapshots {

SnapshotterWorker::SnapshotterWorker(Snapshotter snapshotter, std::chrono::milliseconds interval,
                                     metrics::DaemonMetrics& metrics, std::string tenant,
                                     Clock clock)
    : Worker({kKind, snapshotter.config().name, std::move(tenant)}),
      snapshotter_(std::move(snapshotter)),
      interval_(interval),
      series_(metrics.snapshotter(key().name, key().tenant)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {
  view_.interval_ms = interval_.count();
}

bool SnapshotterWorker::run_slice(const std::atomic<bool>& stop) {
  if (!assigned()) {
    // Nothing to give back: a run holds the lease only while it lasts.
    std::lock_guard lock(mutex_);
    last_outcome_ = "assigned_elsewhere";
    return false;
  }
  const auto now = clock_();
  if (stop || (last_run_ && now - *last_run_ < interval_)) return false;
  last_run_ = now;  // also after a failure: the next try waits for the interval
  CompactionReport r;
  try {
    r = snapshotter_.compact_once();
  } catch (const std::exception& e) {
    // A database failure: the snapshots written stay; tried again after the interval.
    series_.failures->Increment();
    std::lock_guard lock(mutex_);
    last_outcome_ = "error";
    view_.last_run_at = std::chrono::system_clock::now();
    view_.last_error = e.what();
    view_.last_error_at = view_.last_run_at;
    if (now - last_error_log_ > std::chrono::seconds(10)) {
      spdlog::warn("snapshotter {}: {}", name(), e.what());
      last_error_log_ = now;
    }
    return false;
  }
  const double seconds = std::chrono::duration<double>(r.duration).count();
  if (!r.lease_held_elsewhere) {
    series_.runs->Increment();
    series_.candidates->Increment(static_cast<double>(r.candidates));
    series_.written->Increment(static_cast<double>(r.written));
    series_.failures->Increment(static_cast<double>(r.failures.size()));
    series_.duration->Observe(seconds);
    series_.max_events_since_snapshot->Set(static_cast<double>(r.max_events_since_snapshot));
  }
  for (const auto& f : r.failures) {
    spdlog::warn("snapshotter {}: stream {} at version {} failed, skipped until the next run: {}",
                 name(), to_string(f.stream_id), f.version, f.error);
  }
  if (r.written > 0)
    spdlog::debug("snapshotter {}: {} snapshot(s) written of {} candidate(s)", name(), r.written,
                  r.candidates);
  std::lock_guard lock(mutex_);
  view_.last_run_at = std::chrono::system_clock::now();
  view_.candidates = r.candidates;
  view_.written = r.written;
  view_.superseded = r.superseded;
  view_.failures = r.failures.size();
  view_.max_events_since_snapshot = r.max_events_since_snapshot;
  view_.duration_seconds = seconds;
  view_.lease_held_elsewhere = r.lease_held_elsewhere;
  if (!r.failures.empty()) {
    view_.last_error =
        "stream " + to_string(r.failures.front().stream_id) + ": " + r.failures.front().error;
    view_.last_error_at = view_.last_run_at;
  }
  last_outcome_ = r.lease_held_elsewhere ? "leased_by_other"
                  : r.lease_lost         ? "lease_lost"
                  : !r.failures.empty()  ? "failed"
                                         : "idle";
  return false;
}

void SnapshotterWorker::describe(status::WorkerView& view) const {
  view.kind = kKind;
  view.name = name();
  std::lock_guard lock(mutex_);
  view.snapshotter = view_;
  view.owned = false;  // the lease is held during a run only
}

std::string SnapshotterWorker::last_outcome() const {
  std::lock_guard lock(mutex_);
  return last_outcome_;
}

}  // namespace rillflow::snapshots
