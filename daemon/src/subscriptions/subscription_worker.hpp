#pragma once

#include "config/config.hpp"
#include "metrics/daemon_metrics.hpp"
#include "plugin/plugin_loader.hpp"
#include "runtime/worker.hpp"

#include <rillflow/store.hpp>
#include <rillflow/subscriptions/subscriptions.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace rillflow::subscriptions {

/// One unit of a `subscriptions:` entry as a runtime::Worker of kind "subscription": the
/// subscription itself (no group), its unpartitioned group, or one partition of its group. The
/// membership service assigns it to one daemon; while assigned, the worker is a member of the
/// group (member id = this node's owner id + "/" + the unit) restricted to its partition, and
/// each slice hands what is deliverable now to the plugin (SubscriptionReceiver::run_available:
/// core's leases, checkpoints, retry and parking). Losing the unit, a reload and a drain close
/// the subscriber: acknowledgements written, lease released, the group left.
class SubscriptionWorker final : public runtime::Worker {
 public:
  static constexpr const char* kKind = "subscription";
  SubscriptionWorker(Store store, config::SubscriptionEntry entry, int partition,
                     std::shared_ptr<plugin::PluginSubscriptionHandler> handler, std::string owner,
                     std::chrono::milliseconds lease_ttl, metrics::DaemonMetrics& metrics,
                     std::string tenant = {});
  ~SubscriptionWorker() override;

  bool run_slice(const std::atomic<bool>& stop) override;
  void describe(status::WorkerView& view) const override;
  std::string last_outcome() const override;
  void release() override;

 private:
  void open();
  void close();
  void handle(const EventEnvelope& event);
  void set_outcome(std::string outcome);

  Store store_;
  Subscriptions subs_;
  config::SubscriptionEntry entry_;
  int partition_;
  std::shared_ptr<plugin::PluginSubscriptionHandler> handler_;
  std::string member_;
  std::chrono::milliseconds lease_ttl_;
  metrics::SubscriptionSeries& series_;
  std::optional<SubscriptionHandle> handle_;
  std::optional<SubscriptionReceiver> receiver_;
  bool stopped_ = false;  ///< on_failure: stop hit: nothing more until a reload
  std::atomic<std::uint64_t> delivered_{0}, acked_{0}, redelivered_{0}, parked_{0};
  mutable std::mutex mutex_;
  bool holding_ = false;
  std::string last_error_;
  std::string last_outcome_ = "idle";
  std::chrono::steady_clock::time_point last_error_log_{};
};

}  // namespace rillflow::subscriptions
