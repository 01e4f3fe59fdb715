#pragma once
// Subscriptions: named, stored feed consumers that hand events to application code and
// remember how far they got. A subscription is a consumer kind of the shared runtime (leases,
// checkpoints, parking in work_units / parked, kind "subscription"); docs/subscriptions.md.
//
//   auto subs = store.subscriptions();
//   subs.create("s1", {.event_types = {"Ping"}}, {});
//   auto [handle, rx] = subs.subscribe("s1", {.event_types = {"Ping"}}, {});
//   while (auto e = rx.next(std::chrono::seconds(1))) { ... }   // auto ack: after you return
//
// Delivery follows the feed (never skips a committed event, DESIGN §5), is woken by NOTIFY and
// polls as a fallback. The checkpoint is the position just before the lowest unacknowledged
// event and never moves backwards, so a crash redelivers exactly what was not acknowledged.

#include <rillflow/events/event.hpp>
#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/projections/transaction.hpp>
#include <rillflow/runtime/assignment.hpp>
#include <rillflow/store.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rillflow {

/// Which events a subscription delivers; every set criterion must match (empty: any).
struct SubscriptionFilter {
  std::vector<std::string> event_types;
  std::vector<Uuid> stream_ids;
  /// Streams whose alias starts with this, e.g. "orders:" (Store::resolve_stream_alias).
  std::optional<std::string> alias_prefix;

  bool operator==(const SubscriptionFilter&) const = default;
};
Json to_json(const SubscriptionFilter& filter);

/// Where a new subscription starts. Only used when the subscription is created (and by reset).
class StartFrom {
 public:
  enum class Kind { kBeginning, kEnd, kAfter, kTime };
  /// Every event in the feed.
  static StartFrom beginning() { return StartFrom(Kind::kBeginning, 0, {}); }
  /// Only events committed after the subscription was created.
  static StartFrom end() { return StartFrom(Kind::kEnd, 0, {}); }
  /// Events with global_seq > `global_seq` (0 is the beginning).
  static StartFrom after(std::int64_t global_seq) {
    return StartFrom(Kind::kAfter, global_seq, {});
  }
  /// Events created at or after `t`.
  static StartFrom at(std::chrono::system_clock::time_point t) {
    return StartFrom(Kind::kTime, 0, t);
  }

  Kind kind() const noexcept { return kind_; }
  std::int64_t global_seq() const noexcept { return seq_; }
  std::chrono::system_clock::time_point time() const noexcept { return time_; }
  /// "beginning", "end", "after N" or "time 2026-...Z".
  std::string to_string() const;
  /// Reads "beginning", "end", a global_seq (events after it: "42") or an RFC 3339 UTC time
  /// ("2026-01-02T03:04:05Z", fractions allowed), as the CLI and rillflowd's config take them.
  /// Throws kInvalidArgument naming the text otherwise.
  static StartFrom parse(std::string_view text);

 private:
  StartFrom(Kind k, std::int64_t s, std::chrono::system_clock::time_point t)
      : kind_(k), seq_(s), time_(t) {}
  Kind kind_;
  std::int64_t seq_;
  std::chrono::system_clock::time_point time_;
};

enum class AckMode {
  kAuto,    ///< acknowledged once the handler returned (run) or the next event is asked for (next)
  kManual,  ///< only SubscriptionHandle::ack / ack_in acknowledge
};

/// Settings of one subscriber (the definition's filter and start are stored by create()).
struct SubscriptionOptions {
  StartFrom start_from = StartFrom::beginning();
  /// Join this consumer group: members share the subscription's events.
  std::optional<std::string> group;
  /// Group only, used when the group is created: 0 = members share one stream of events (no
  /// per-stream order across members); N >= 1 = N partitions by hash of stream id, each run by
  /// one member at a time, so per-stream order holds. Change it with set_group_partitions.
  int partitions = 0;
  /// Group only, used when the group is created: delivered-but-unacked events per group.
  std::optional<std::int64_t> max_in_flight;
  AckMode ack_mode = AckMode::kAuto;
  std::size_t batch_size = 500;
  /// Lease of a unit (and member liveness): a dead member's work moves on after this.
  std::chrono::milliseconds lease_ttl{30000};
  /// Automatic acknowledgements are written at most this often while events keep coming (and
  /// always before waiting for news and on close): a crash redelivers at most this much work.
  std::chrono::milliseconds auto_ack_interval{100};
  /// Polling fallback when no NOTIFY arrives.
  std::chrono::milliseconds poll_interval{500};
  /// run(): attempts per event before it is parked (kDeadLetter) or run() throws (kStop).
  int max_attempts = 5;
  std::chrono::milliseconds retry_base_delay{1000};
  std::chrono::milliseconds retry_max_delay{300000};
  FailurePolicy on_failure = FailurePolicy::kDeadLetter;
  /// This member's id (default host:pid:random).
  std::string member_id;
  /// Partitioned groups only: run just this partition and leave the split of partitions across
  /// members to the caller (rillflowd's membership assigns each (group, partition) unit to one
  /// daemon). Unset: members split the partitions among themselves. The partition's lease still
  /// guarantees one holder at a time.
  std::optional<int> partition;
};

/// What one SubscriptionReceiver::run_available call did.
struct RunAvailableResult {
  std::size_t handled = 0;      ///< events the handler returned for
  std::size_t redelivered = 0;  ///< of those: taken over from a member that left or died
  std::size_t failed = 0;       ///< handler failures (each retried later or parked)
  std::size_t parked = 0;       ///< events parked after their last attempt
  bool backoff = false;         ///< an event waits for its retry delay: call again later
  bool more = false;            ///< stopped at max_events: more events are ready
  /// FailurePolicy::kStop: an event failed its last attempt. It stays unacknowledged, and this
  /// receiver hands out nothing more (close it; another subscriber starts at that event again).
  bool stopped = false;
};

/// A stored subscription.
struct SubscriptionInfo {
  std::string name;
  SubscriptionFilter filter;
  std::string start_from;  ///< StartFrom::to_string() of the definition
  bool paused = false;
  std::int64_t last_global_seq = 0;  ///< lowest acked position over its units
  std::int64_t head = 0;
  std::int64_t lag_events = 0;
  std::vector<std::string> groups;
  std::chrono::system_clock::time_point created_at;
};
Json to_json(const SubscriptionInfo& info);

struct GroupPartition {
  int partition = 0;
  std::optional<std::string> owner;  ///< the member holding its lease
  std::int64_t last_global_seq = 0;
};

/// A consumer group of a subscription, as group-status shows it.
struct GroupStatus {
  std::string subscription;
  std::string group;
  std::int64_t last_seq = 0;  ///< lowest acknowledged global_seq over the group's units
  std::int64_t head = 0;      ///< highest committed global_seq
  std::int64_t lag_events = 0;
  double lag_seconds = 0;  ///< age of the oldest event after last_seq (0 when caught up)
  std::int64_t in_flight = 0;
  std::optional<std::int64_t> max_in_flight;
  int partitions = 0;
  std::vector<std::string> members;  ///< live members
  std::vector<GroupPartition> partition_owners;
};
Json to_json(const GroupStatus& status);

class SubscriptionHandle;
class SubscriptionReceiver;

/// Throws kInvalidArgument unless `name` is a valid subscription or group name (1 to 63
/// characters of [A-Za-z0-9_.:-] starting with a letter or digit); `what` names it in the message.
void validate_subscription_name(std::string_view name, std::string_view what);
/// The work unit (kind "subscription") of a subscription without a group (group ""), of an
/// unpartitioned group (partition -1) or of one partition: what its lease, checkpoint and parked
/// events are stored under, and what rillflowd's membership assigns.
runtime::UnitKey subscription_unit(const std::string& subscription, const std::string& group,
                                   int partition);

/// Subscription admin and subscribe. Obtained from Store::subscriptions() (or constructed from a
/// Store). Thread-safe. Unknown names throw NotFound and write nothing; names (subscription and
/// group) are 1 to 63 characters of [A-Za-z0-9_.:-] starting with a letter or digit, else
/// kInvalidArgument.
class Subscriptions {
 public:
  explicit Subscriptions(Store store);

  /// Stores the definition; kInvalidArgument when it exists with another filter (same filter:
  /// returns it unchanged). options.group creates the group too (partitions, max_in_flight).
  SubscriptionInfo create(const std::string& name, const SubscriptionFilter& filter,
                          const SubscriptionOptions& options = {});
  /// Creates the subscription when missing (as create), joins it (and options.group) and starts
  /// delivering from its checkpoint. The receiver delivers; the handle acknowledges and closes.
  std::pair<SubscriptionHandle, SubscriptionReceiver> subscribe(
      const std::string& name, const SubscriptionFilter& filter,
      const SubscriptionOptions& options = {});

  std::vector<SubscriptionInfo> list() const;
  std::optional<SubscriptionInfo> get(const std::string& name) const;
  /// Deletes the definition, its groups, members, checkpoints and parked events.
  void remove(const std::string& name);
  void pause(const std::string& name);
  void resume(const std::string& name);
  /// Every unit of the subscription starts again from `from` (in-flight events are forgotten).
  void reset(const std::string& name, const StartFrom& from);

  std::vector<GroupStatus> groups(const std::string& name) const;
  GroupStatus group_status(const std::string& name, const std::string& group) const;
  /// nullopt removes the bound. Values below 1 are kInvalidArgument.
  void set_group_max_in_flight(const std::string& name, const std::string& group,
                               std::optional<std::int64_t> value);
  /// Re-partitions a group (0 = unpartitioned). Nothing is lost: every new partition starts at
  /// the lowest checkpoint of the old ones, so events acked since then may be delivered again.
  void set_group_partitions(const std::string& name, const std::string& group, int partitions);

  /// Parked events of the subscription (every unit, or those of `group`), oldest first.
  std::vector<DlqEntry> parked(const std::string& name, std::size_t limit = 100) const;
  /// Redelivers one parked event once; false when no such entry belongs to the subscription.
  bool requeue_parked(const std::string& name, std::int64_t id);
  bool delete_parked(const std::string& name, std::int64_t id);

  /// Runs `body` in one transaction on a pooled connection and commits it when it returns (rolls
  /// back when it throws): the transaction for SubscriptionHandle::ack_in and your side effects.
  void in_transaction(const std::function<void(Transaction&)>& body) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

namespace detail {
class Subscriber;
}

/// Acknowledges delivered events and ends the subscriber. Copies share the subscriber.
/// Thread-safe (one may ack on one thread while the receiver waits on another).
class SubscriptionHandle {
 public:
  /// Acknowledges the delivered event `global_seq` and writes the checkpoint before returning.
  /// An event that is not (or no longer) in flight here is ignored.
  void ack(std::int64_t global_seq);
  /// The same in the caller's transaction: durable only if `txn` commits (a rollback leaves it
  /// unacknowledged); the checkpoint follows at the receiver's next poll. Fenced: when the event
  /// went to another member meanwhile (this one missed its heartbeats) it throws an Error of
  /// code kLeaseLost, and LeaseLost when this ungrouped subscriber's lease was taken over; roll
  /// `txn` back then (Subscriptions::in_transaction does), the event is the other's now.
  void ack_in(Transaction& txn, std::int64_t global_seq);
  /// Writes pending automatic acknowledgements, gives leases up and leaves the group; events not
  /// acknowledged go to other members (or the next subscriber) at once. Also done when the last
  /// copy of the handle and the receiver is gone.
  void close();
  const std::string& member_id() const;

  explicit SubscriptionHandle(std::shared_ptr<detail::Subscriber> s) : s_(std::move(s)) {}

 private:
  std::shared_ptr<detail::Subscriber> s_;
};

/// Delivers events. Not for concurrent use from several threads.
class SubscriptionReceiver {
 public:
  /// The next event, waiting up to `timeout`; nullopt when none arrived. In auto ack mode the
  /// event returned before is acknowledged first.
  std::optional<EventEnvelope> next(std::chrono::milliseconds timeout);
  /// Calls `handler` for each event until `stop` is requested. Auto ack: acknowledged after the
  /// handler returned. A throwing handler is retried with backoff (options' retry settings), then
  /// the event is parked and delivery goes on, or (FailurePolicy::kStop) run() rethrows.
  void run(const std::function<void(const EventEnvelope&)>& handler, std::stop_token stop);
  /// Handles what can be delivered now, at most `max_events`, and returns without waiting for
  /// news (rillflowd calls it when NOTIFY or its poll wakes a unit; no LISTEN connection is
  /// opened). Acknowledges as run() does. A failing event is not waited for: it is retried by a
  /// later call once its delay (the options' retry settings) has passed, and nothing else is
  /// handed out meanwhile; after the last attempt it is parked (kDeadLetter) or the receiver
  /// stops (kStop: `stopped` is set, now and in every later call).
  RunAvailableResult run_available(const std::function<void(const EventEnvelope&)>& handler,
                                   std::size_t max_events);

  explicit SubscriptionReceiver(std::shared_ptr<detail::Subscriber> s) : s_(std::move(s)) {}

 private:
  std::shared_ptr<detail::Subscriber> s_;
};

}  // namespace rillflow
