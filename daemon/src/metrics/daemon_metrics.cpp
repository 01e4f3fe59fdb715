#include "metrics/daemon_metrics.hpp"

#include <prometheus/text_serializer.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <fstream>

namespace rillflow::metrics {

namespace {

double resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

template <class Builder>
auto& family(Builder builder, const char* name, const char* help, prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

}  // namespace

DaemonMetrics::DaemonMetrics(const std::string& version, bool tenant_label)
    : registry_(std::make_shared<prometheus::Registry>()),
      processed_(family(prometheus::BuildCounter(), "rillflow_events_processed_total",
                        "Events handled by a projection (including events its filter skipped).",
                        *registry_)),
      retries_(family(prometheus::BuildCounter(), "rillflow_projection_retries_total",
                      "Failed attempts at an event (each is retried or dead-lettered).",
                      *registry_)),
      batch_duration_(family(prometheus::BuildHistogram(),
                             "rillflow_projection_batch_duration_seconds",
                             "Time to handle and commit one batch.", *registry_)),
      lag_events_(family(prometheus::BuildGauge(), "rillflow_projection_lag_events",
                         "Events committed after the projection's position.", *registry_)),
      lag_seconds_(family(prometheus::BuildGauge(), "rillflow_projection_lag_seconds",
                          "Age of the oldest event the projection has not handled yet.",
                          *registry_)),
      dlq_depth_(family(prometheus::BuildGauge(), "rillflow_projection_dlq_depth",
                        "Events parked in the projection's dead-letter queue.", *registry_)),
      dlq_oldest_age_(family(prometheus::BuildGauge(), "rillflow_projection_dlq_oldest_age_seconds",
                             "Age of the oldest dead-lettered event.", *registry_)),
      lease_owned_(family(prometheus::BuildGauge(), "rillflow_projection_lease_owned",
                          "1 when this process holds the projection's lease.", *registry_)),
      paused_(family(prometheus::BuildGauge(), "rillflow_projection_paused",
                     "1 when the projection is paused.", *registry_)),
      snapshotter_runs_(family(prometheus::BuildCounter(), "rillflow_snapshotter_runs_total",
                               "Snapshotter runs (compact_once calls) this process made.",
                               *registry_)),
      snapshotter_candidates_(
          family(prometheus::BuildCounter(), "rillflow_snapshotter_candidates_total",
                 "Streams a snapshotter took up (past its threshold).", *registry_)),
      snapshots_written_(family(prometheus::BuildCounter(), "rillflow_snapshots_written_total",
                                "Snapshots a snapshotter stored.", *registry_)),
      snapshotter_failures_(
          family(prometheus::BuildCounter(), "rillflow_snapshotter_failures_total",
                 "Streams whose folder failed, and runs a database failure ended.", *registry_)),
      snapshotter_duration_(family(prometheus::BuildHistogram(),
                                   "rillflow_snapshotter_run_duration_seconds",
                                   "Time of one snapshotter run.", *registry_)),
      snapshotter_max_events_(family(prometheus::BuildGauge(),
                                     "rillflow_snapshotter_max_events_since_snapshot",
                                     "The largest events-since-snapshot among the last run's "
                                     "candidates.",
                                     *registry_)),
      consumer_blocked_(family(prometheus::BuildGauge(), "rillflow_consumer_blocked_seconds",
                               "How long an open appending transaction has held the consumer "
                               "back (0 when nothing does).",
                               *registry_)),
      sub_delivered_(family(prometheus::BuildCounter(), "rillflow_subscription_delivered_total",
                            "Events a subscription unit handed to its handler (each attempt).",
                            *registry_)),
      sub_acked_(family(prometheus::BuildCounter(), "rillflow_subscription_acked_total",
                        "Events a subscription's handler finished and acknowledged.", *registry_)),
      sub_redelivered_(family(prometheus::BuildCounter(), "rillflow_subscription_redelivered_total",
                              "Events taken over from a group member that died or left.",
                              *registry_)),
      sub_parked_(family(prometheus::BuildCounter(), "rillflow_subscription_parked_total",
                         "Events parked after their last attempt.", *registry_)),
      sub_in_flight_(family(prometheus::BuildGauge(), "rillflow_subscription_in_flight",
                            "Delivered but unacknowledged events of the group.", *registry_)),
      sub_max_in_flight_(family(prometheus::BuildGauge(), "rillflow_subscription_max_in_flight",
                                "The group's in-flight bound (0: unbounded).", *registry_)),
      sub_lag_events_(family(prometheus::BuildGauge(), "rillflow_subscription_lag_events",
                             "Events committed after the group's checkpoint.", *registry_)),
      sub_lag_seconds_(family(prometheus::BuildGauge(), "rillflow_subscription_lag_seconds",
                              "Age of the oldest event after the group's checkpoint.",
                              *registry_)),
      tenant_label_(tenant_label) {
  auto& wakeups =
      family(prometheus::BuildCounter(), "rillflow_wakeups_total",
             "Worker wakeups by cause: a NOTIFY from an append, or the polling timer.", *registry_);
  wakeups_notify_ = &wakeups.Add({{"cause", "notify"}});
  wakeups_poll_ = &wakeups.Add({{"cause", "poll"}});
  pool_open_ = &family(prometheus::BuildGauge(), "rillflow_db_pool_connections",
                       "Database connections of the pool.", *registry_)
                    .Add({{"state", "open"}});
  ready_ = &family(prometheus::BuildGauge(), "rillflow_ready", "1 when /health/ready answers 200.",
                   *registry_)
                .Add({});
  family(prometheus::BuildGauge(), "rillflow_build_info", "Build information.", *registry_)
      .Add({{"version", version}})
      .Set(1);
  rss_ = &family(prometheus::BuildGauge(), "rillflow_process_resident_memory_bytes",
                 "Resident memory size.", *registry_)
              .Add({});
  start_time_ = &family(prometheus::BuildGauge(), "rillflow_process_start_time_seconds",
                        "Start time of the process since the Unix epoch.", *registry_)
                     .Add({});
  start_time_->Set(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

prometheus::Labels DaemonMetrics::with_tenant(prometheus::Labels labels,
                                              const std::string& tenant) const {
  if (tenant_label_ && !tenant.empty()) labels.emplace("tenant", tenant);
  return labels;
}

ProjectionSeries& DaemonMetrics::projection(const std::string& name, const std::string& tenant) {
  std::lock_guard lock(mutex_);
  const auto key = std::make_pair(name, tenant_key(tenant));
  auto it = series_.find(key);
  if (it == series_.end()) {
    const auto labels = with_tenant({{"projection", name}}, tenant);
    static const prometheus::Histogram::BucketBoundaries kBuckets{
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    it = series_
             .emplace(key, ProjectionSeries{&processed_.Add(labels), &retries_.Add(labels),
                                            &batch_duration_.Add(labels, kBuckets),
                                            &lag_events_.Add(labels), &lag_seconds_.Add(labels),
                                            &dlq_depth_.Add(labels), &dlq_oldest_age_.Add(labels),
                                            &lease_owned_.Add(labels), &paused_.Add(labels)})
             .first;
  }
  return it->second;
}

SnapshotterSeries& DaemonMetrics::snapshotter(const std::string& name,
                                              const std::string& tenant) {
  std::lock_guard lock(mutex_);
  const auto key = std::make_pair(name, tenant_key(tenant));
  auto it = snapshotter_series_.find(key);
  if (it == snapshotter_series_.end()) {
    const auto labels = with_tenant({{"snapshotter", name}}, tenant);
    static const prometheus::Histogram::BucketBoundaries kBuckets{
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    it = snapshotter_series_
             .emplace(key, SnapshotterSeries{&snapshotter_runs_.Add(labels),
                                             &snapshotter_candidates_.Add(labels),
                                             &snapshots_written_.Add(labels),
                                             &snapshotter_failures_.Add(labels),
                                             &snapshotter_duration_.Add(labels, kBuckets),
                                             &snapshotter_max_events_.Add(labels)})
             .first;
  }
  return it->second;
}

SubscriptionSeries& DaemonMetrics::subscription(const std::string& name, const std::string& group,
                                                const std::string& tenant) {
  std::lock_guard lock(mutex_);
  const auto key = std::make_tuple(name, group, tenant_key(tenant));
  auto it = subscription_series_.find(key);
  if (it == subscription_series_.end()) {
    const auto labels = with_tenant({{"subscription", name}, {"group", group}}, tenant);
    it = subscription_series_
             .emplace(
                 key,
                 SubscriptionSeries{&sub_delivered_.Add(labels), &sub_acked_.Add(labels),
                                    &sub_redelivered_.Add(labels), &sub_parked_.Add(labels),
                                    &sub_in_flight_.Add(labels), &sub_max_in_flight_.Add(labels),
                                    &sub_lag_events_.Add(labels), &sub_lag_seconds_.Add(labels)})
             .first;
  }
  return it->second;
}

namespace {
// A gauge's value over the workers that share its series (one per series when labelled by
// tenant): the largest, or the sum.
struct GaugeValues {
  std::map<prometheus::Gauge*, double> values;
  void max(prometheus::Gauge* g, double v) {
    auto [it, fresh] = values.try_emplace(g, v);
    if (!fresh) it->second = std::max(it->second, v);
  }
  void sum(prometheus::Gauge* g, double v) { values[g] += v; }
  void set() const {
    for (const auto& [g, v] : values) g->Set(v);
  }
};
}  // namespace

void DaemonMetrics::observe(const status::StatusSnapshot& status, std::size_t pool_connections) {
  GaugeValues gauges;
  for (const auto& w : status.workers) {
    gauges.max(&consumer_blocked_.Add(with_tenant({{"consumer", w.name}, {"kind", w.kind}},
                                                  w.tenant)),
               w.blocked_seconds());
    if (w.kind == "subscription" && w.subscription.group_status) {
      const auto& g = *w.subscription.group_status;
      auto& s = subscription(w.subscription.subscription, w.subscription.group, w.tenant);
      gauges.sum(s.in_flight, static_cast<double>(g.in_flight));
      gauges.max(s.max_in_flight, static_cast<double>(g.max_in_flight.value_or(0)));
      gauges.max(s.lag_events, static_cast<double>(g.lag_events));
      gauges.max(s.lag_seconds, g.lag_seconds);
    }
    if (w.kind != "projection") continue;  // a snapshotter's series are set by its runs
    auto& s = projection(w.name, w.tenant);
    gauges.max(s.lag_events, static_cast<double>(w.metrics.lag_events));
    gauges.max(s.lag_seconds, w.metrics.lag_seconds);
    gauges.sum(s.dlq_depth, static_cast<double>(w.metrics.dlq_count));
    gauges.max(s.dlq_oldest_age, w.metrics.dlq_oldest_age_seconds);
    gauges.sum(s.lease_owned, w.owned ? 1 : 0);
    gauges.max(s.paused, w.status && w.status->paused ? 1 : 0);
  }
  gauges.set();
  pool_open_->Set(static_cast<double>(pool_connections));
  ready_->Set(status::unready_reason(status).empty() ? 1 : 0);
}

std::string DaemonMetrics::render() {
  rss_->Set(resident_memory_bytes());
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace rillflow::metrics
