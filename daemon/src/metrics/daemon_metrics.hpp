#pragma once
// rillflowd's Prometheus metrics: families built once, held by reference; the hot path only
// increments. Served as text by the HTTP server.

#include "status/status.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

namespace rillflow::metrics {

/// Per-projection series, created once per projection name.
struct ProjectionSeries {
  prometheus::Counter* processed;
  prometheus::Counter* retries;
  prometheus::Histogram* batch_duration;
  prometheus::Gauge* lag_events;
  prometheus::Gauge* lag_seconds;
  prometheus::Gauge* dlq_depth;
  prometheus::Gauge* dlq_oldest_age;
  prometheus::Gauge* lease_owned;
  prometheus::Gauge* paused;
};

/// Per-snapshotter series (label snapshotter=name), created once per snapshotter name.
struct SnapshotterSeries {
  prometheus::Counter* runs;
  prometheus::Counter* candidates;
  prometheus::Counter* written;
  prometheus::Counter* failures;
  prometheus::Histogram* duration;
  prometheus::Gauge* max_events_since_snapshot;
};

/// Per-subscription-group series (labels subscription, group; group "" without one), created
/// once per pair and shared by the group's partition workers.
struct SubscriptionSeries {
  prometheus::Counter* delivered;    ///< hand-overs to the handler (a retry counts again)
  prometheus::Counter* acked;        ///< events the handler finished (acknowledged)
  prometheus::Counter* redelivered;  ///< events taken over from a member that died or left
  prometheus::Counter* parked;
  prometheus::Gauge* in_flight;      ///< from the status refresh: delivered, not acknowledged
  prometheus::Gauge* max_in_flight;  ///< the group's bound (0: unbounded)
  prometheus::Gauge* lag_events;
  prometheus::Gauge* lag_seconds;
};

class DaemonMetrics {
 public:
  /// `tenant_label`: series of a unit of a tenant carry the label tenant="<name>"; without it,
  /// the tenants' units share one series per name (counters sum, gauges show the largest).
  explicit DaemonMetrics(const std::string& version, bool tenant_label = true);

  // The series of one unit (thread-safe; created on first use). `tenant`: "" for the base
  // schema's units.
  ProjectionSeries& projection(const std::string& name, const std::string& tenant = {});
  SnapshotterSeries& snapshotter(const std::string& name, const std::string& tenant = {});
  /// One subscription group's series, shared by the group's partition workers.
  SubscriptionSeries& subscription(const std::string& name, const std::string& group,
                                   const std::string& tenant = {});
  void wakeup(bool from_notify) { (from_notify ? wakeups_notify_ : wakeups_poll_)->Increment(); }
  /// Updates the gauges that come from the status refresh.
  void observe(const status::StatusSnapshot& status, std::size_t pool_connections);
  /// The exposition text (process figures read now).
  std::string render();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& processed_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Histogram>& batch_duration_;
  prometheus::Family<prometheus::Gauge>& lag_events_;
  prometheus::Family<prometheus::Gauge>& lag_seconds_;
  prometheus::Family<prometheus::Gauge>& dlq_depth_;
  prometheus::Family<prometheus::Gauge>& dlq_oldest_age_;
  prometheus::Family<prometheus::Gauge>& lease_owned_;
  prometheus::Family<prometheus::Gauge>& paused_;
  prometheus::Family<prometheus::Counter>& snapshotter_runs_;
  prometheus::Family<prometheus::Counter>& snapshotter_candidates_;
  prometheus::Family<prometheus::Counter>& snapshots_written_;
  prometheus::Family<prometheus::Counter>& snapshotter_failures_;
  prometheus::Family<prometheus::Histogram>& snapshotter_duration_;
  prometheus::Family<prometheus::Gauge>& snapshotter_max_events_;
  prometheus::Family<prometheus::Gauge>& consumer_blocked_;
  prometheus::Family<prometheus::Counter>& sub_delivered_;
  prometheus::Family<prometheus::Counter>& sub_acked_;
  prometheus::Family<prometheus::Counter>& sub_redelivered_;
  prometheus::Family<prometheus::Counter>& sub_parked_;
  prometheus::Family<prometheus::Gauge>& sub_in_flight_;
  prometheus::Family<prometheus::Gauge>& sub_max_in_flight_;
  prometheus::Family<prometheus::Gauge>& sub_lag_events_;
  prometheus::Family<prometheus::Gauge>& sub_lag_seconds_;
  prometheus::Counter* wakeups_notify_;
  prometheus::Counter* wakeups_poll_;
  prometheus::Gauge* pool_open_;
  prometheus::Gauge* ready_;
  prometheus::Gauge* rss_;
  prometheus::Gauge* start_time_;
  /// `labels` plus tenant="<tenant>" when labelled by tenant; the tenant part of series keys.
  prometheus::Labels with_tenant(prometheus::Labels labels, const std::string& tenant) const;
  std::string tenant_key(const std::string& tenant) const { return tenant_label_ ? tenant : ""; }

  bool tenant_label_;
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, ProjectionSeries> series_;  // (name, tenant)
  std::map<std::pair<std::string, std::string>, SnapshotterSeries> snapshotter_series_;
  std::map<std::tuple<std::string, std::string, std::string>, SubscriptionSeries>
      subscription_series_;  // (name, group, tenant)
};

}  // namespace rillflow::metrics
