#include "subscriptions/subscription_worker.hpp"

#include <rillflow/error.hpp>

#include <spdlog/spdlog.h>

namespace rillflow::subscriptions {

namespace {
// Events per run_available call and calls per slice, then the slice yields to the scheduler
// (fairness, drain checks).
constexpr std::size_t kEventsPerCall = 200;
constexpr int kCallsPerSlice = 10;
}  // namespace

SubscriptionWorker::SubscriptionWorker(Store store, config::SubscriptionEntry entry, int partition,
                                       std::shared_ptr<plugin::PluginSubscriptionHandler> handler,
                                       std::string owner, std::chrono::milliseconds lease_ttl,
                                       metrics::DaemonMetrics& metrics, std::string tenant)
    : Worker(runtime::in_tenant(subscription_unit(entry.name, entry.group, partition),
                                std::move(tenant))),
      store_(store),
      subs_(store),
      entry_(std::move(entry)),
      partition_(partition),
      handler_(std::move(handler)),
      member_(std::move(owner) + "/" + name()),
      lease_ttl_(lease_ttl),
      series_(metrics.subscription(entry_.name, entry_.group, key().tenant)) {}

SubscriptionWorker::~SubscriptionWorker() {
  close();
}

void SubscriptionWorker::set_outcome(std::string outcome) {
  std::lock_guard lock(mutex_);
  last_outcome_ = std::move(outcome);
}

void SubscriptionWorker::open() {
  auto options = entry_.options(lease_ttl_);
  options.member_id = member_;
  if (partition_ >= 0) options.partition = partition_;
  auto [handle, receiver] = subs_.subscribe(entry_.name, entry_.filter(), options);
  handle_.emplace(std::move(handle));
  receiver_.emplace(std::move(receiver));
  subs_.in_transaction([&](Transaction& txn) { handler_->prepare(txn); });
  if (!entry_.group.empty() && partition_ <= 0) {
    // The stored group decides the partitions; say so when the config names another count.
    const auto g = subs_.group_status(entry_.name, entry_.group);
    if (g.partitions != entry_.partitions) {
      spdlog::warn(
          "subscription {} group {}: stored with {} partition(s), the config says {}; the "
          "config's units run (run `rillflow subscriptions set-group-partitions` to change the "
          "group)",
          entry_.name, entry_.group, g.partitions, entry_.partitions);
    }
  }
  std::lock_guard lock(mutex_);
  holding_ = true;
}

void SubscriptionWorker::close() {
  if (handle_) {
    try {
      handle_->close();
    } catch (const std::exception& e) {
      spdlog::debug("subscription unit {}: closing failed: {}", name(), e.what());
    }
  }
  receiver_.reset();
  handle_.reset();
  std::lock_guard lock(mutex_);
  holding_ = false;
}

void SubscriptionWorker::release() {
  close();
}

void SubscriptionWorker::handle(const EventEnvelope& event) {
  series_.delivered->Increment();
  delivered_.fetch_add(1);
  if (entry_.ack == "in_transaction") {
    // The side effects and the acknowledgement commit together, or neither does.
    subs_.in_transaction([&](Transaction& txn) {
      handler_->handle(event, txn);
      handle_->ack_in(txn, event.global_seq);
    });
  } else {
    // Committed first; the receiver acknowledges once this returns (auto ack).
    subs_.in_transaction([&](Transaction& txn) { handler_->handle(event, txn); });
  }
}

bool SubscriptionWorker::run_slice(const std::atomic<bool>& stop) {
  if (!assigned()) {
    if (handle_) close();
    set_outcome("assigned_elsewhere");
    return false;
  }
  if (stopped_) {
    set_outcome("stopped");
    return false;
  }
  try {
    if (!receiver_) open();
    for (int i = 0; i < kCallsPerSlice && !stop; ++i) {
      const auto r =
          receiver_->run_available([this](const EventEnvelope& e) { handle(e); }, kEventsPerCall);
      series_.acked->Increment(static_cast<double>(r.handled));
      series_.redelivered->Increment(static_cast<double>(r.redelivered));
      series_.parked->Increment(static_cast<double>(r.parked));
      acked_.fetch_add(r.handled);
      redelivered_.fetch_add(r.redelivered);
      parked_.fetch_add(r.parked);
      if (r.parked > 0) spdlog::warn("subscription unit {}: {} event(s) parked", name(), r.parked);
      if (r.stopped) {
        spdlog::error(
            "subscription unit {}: an event failed its last attempt (on_failure: stop); "
            "the unit stops until a reload",
            name());
        stopped_ = true;
        close();
        set_outcome("stopped");
        return false;
      }
      if (r.backoff) {
        set_outcome("backoff");
        return false;
      }
      if (!r.more) {
        set_outcome(r.handled > 0 ? "processed" : "idle");
        return false;
      }
    }
    set_outcome("processed");
    return !stop;
  } catch (const std::exception& e) {
    // A database outage, a subscription stored with another filter, a failing prepare hook:
    // logged (at most every 10 s); the subscriber is closed and opened again at the next wakeup
    // (what it did not acknowledge is delivered again).
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      last_outcome_ = "error";
      last_error_ = e.what();
      if (now - last_error_log_ > std::chrono::seconds(10)) {
        spdlog::warn("subscription unit {}: {}", name(), e.what());
        last_error_log_ = now;
      }
    }
    close();
    return false;
  }
}

void SubscriptionWorker::describe(status::WorkerView& view) const {
  view.kind = kKind;
  view.name = name();
  auto& s = view.subscription;
  s.subscription = entry_.name;
  s.group = entry_.group;
  s.partition = partition_;
  s.ack = entry_.ack;
  s.delivered = delivered_.load();
  s.acked = acked_.load();
  s.redelivered = redelivered_.load();
  s.parked = parked_.load();
  {
    std::lock_guard lock(mutex_);
    s.holding = holding_;
    s.last_error = last_error_;
  }
  view.owned = s.holding;
  if (partition_ > 0) return;  // the lowest unit reports the group's figures
  try {
    if (entry_.group.empty()) {
      if (const auto info = subs_.get(entry_.name)) {
        GroupStatus g;
        g.subscription = info->name;
        g.last_seq = info->last_global_seq;
        g.head = info->head;
        g.lag_events = info->lag_events;
        s.group_status = g;
      }
    } else {
      s.group_status = subs_.group_status(entry_.name, entry_.group);
    }
  } catch (const NotFound&) {
    // Not created yet (no daemon has opened it): nothing to report.
  }
}

std::string SubscriptionWorker::last_outcome() const {
  std::lock_guard lock(mutex_);
  return last_outcome_;
}

}  // namespace rillflow::subscriptions
