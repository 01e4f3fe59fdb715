#pragma once
// One subscriber (a member of a group, or the holder of an ungrouped subscription): fetches
// events of its units from the feed, hands them out, and turns acknowledgements into
// checkpoints. docs/subscriptions.md describes the model; in short:
//
// - An ungrouped subscription is one exclusive unit (lease held by one subscriber). What is in
//   flight is kept in memory: the checkpoint is written (fenced by the lease) as the position
//   just before the lowest unacknowledged event; events acknowledged out of order beyond it are
//   stored in subscription_deliveries (acked) so a restart skips them.
// - A group's units (one shared unit, or one exclusive unit per partition) record every event
//   they hand out in subscription_deliveries (member, acked), under the group's row lock so
//   max_in_flight holds; an unacknowledged event of a member that stopped heartbeating (or left)
//   goes to the next member that fetches. The checkpoint follows the lowest unacknowledged row
//   (runtime::Checkpoints::advance, under the unit's row lock). A partition's new holder first
//   waits for (or takes over) the previous holder's unacknowledged events: per-stream order.

#include "subscriptions/subscription_state.hpp"

#include "runtime/retry.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pqxx {
class notification_receiver;
}

namespace rillflow::detail {

class Subscriber {
 public:
  Subscriber(std::shared_ptr<const StoreState> state, std::string name,
             SubscriptionOptions options);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  std::optional<EventEnvelope> next(std::chrono::milliseconds timeout);
  void run(const std::function<void(const EventEnvelope&)>& handler, std::stop_token stop);
  RunAvailableResult run_available(const std::function<void(const EventEnvelope&)>& handler,
                                   std::size_t max_events);
  void ack(std::int64_t global_seq);
  void ack_in(Transaction& txn, std::int64_t global_seq);
  void close();
  const std::string& member() const noexcept { return member_; }

 private:
  struct Pending {
    std::int64_t seq = 0;
    FeedPosition prev, pos;  ///< the positions just before and just after the event
    bool acked = false;
    bool persisted = false;  ///< an acked row exists in subscription_deliveries
  };
  struct Unit {
    runtime::UnitKey key;
    int partition = -1;
    bool tracked = false;    ///< a group unit: deliveries rows
    bool exclusive = true;   ///< holds the unit's lease while it works on it
    bool mine = true;        ///< assigned to this member (partitions)
    bool row_known = false;  ///< its work_units row exists
    std::optional<std::int64_t> epoch;
    std::chrono::steady_clock::time_point renewed{};
    bool requeued = false;
    // Ungrouped: the in-flight window.
    FeedPosition checkpoint, cursor;
    std::int64_t read_max = 0;  ///< the highest global_seq read so far
    std::deque<Pending> pending;
    std::uint64_t pending_base = 0;  ///< the absolute index of pending.front()
    std::set<std::int64_t> skip;     ///< acked beyond the checkpoint (stored), not yet read
    /// Acked through ack_in, not yet seen committed: global_seq -> absolute pending index.
    std::map<std::int64_t, std::uint64_t> txn_acks;
    // Acknowledged, not yet written.
    std::vector<std::int64_t> acked;
    std::vector<std::int64_t> parked_done;
  };
  static constexpr std::uint64_t kNoPending = ~std::uint64_t{0};
  struct Ready {
    EventEnvelope event;
    std::size_t unit = 0;
    std::optional<std::int64_t> parked_id;
    bool redelivery = false;  ///< taken over from a member that left or stopped heartbeating
    std::uint64_t pending = kNoPending;  ///< ungrouped: its absolute index in Unit::pending
  };
  /// run_available: a failed event waiting for its next attempt.
  struct Retrying {
    EventEnvelope event;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
    bool redelivery = false;
  };
  struct Out {
    std::size_t unit = 0;
    std::optional<std::int64_t> parked_id;
    std::uint64_t pending = kNoPending;
  };
  /// The ungrouped unit's pending entry of `seq` at absolute index `at`; nullptr once passed.
  static Pending* pending_at(Unit& u, std::uint64_t at, std::int64_t seq);

  /// ack_in found this delivered event taken over (once per event: it forgets the answer).
  bool handed_elsewhere(std::int64_t global_seq);

  // Everything below runs with mu_ held.
  std::optional<EventEnvelope> take(std::chrono::milliseconds timeout, bool auto_last,
                                    std::unique_lock<std::mutex>& lock, bool listen = true);
  void keep_leases();
  /// maintain() and, every lease_ttl / 3, keep_leases(): while events are handed out.
  void stay_alive();
  void maintain();
  void rebuild_units(const subscriptions::GroupRow& group);
  bool hold(Unit& u, pqxx::transaction_base& txn, db::Connection& conn);
  std::size_t fetch(std::size_t index);
  std::size_t fetch_ungrouped(std::size_t index);
  std::size_t fetch_group(std::size_t index);
  void flush();
  void flush_unit(Unit& u);
  void flush_ungrouped(Unit& u);
  void flush_group(Unit& u);
  void settle(pqxx::transaction_base& txn, db::Connection& conn, Unit& u);
  void mark_acked(std::int64_t seq);
  /// Runs the handler on `e` and, in auto mode, acknowledges it once it returned. Returns the
  /// handler's error, or nullopt when it succeeded.
  std::optional<std::string> deliver(const std::function<void(const EventEnvelope&)>& handler,
                                     const EventEnvelope& e);
  void forget_ungrouped(std::size_t index);
  void give_back_ready(std::size_t index, pqxx::transaction_base& txn, db::Connection& conn);
  void give_up(std::size_t index);
  void park(std::int64_t seq, const EventEnvelope& e, const std::string& error, int attempts);
  void resolve_aliases(pqxx::transaction_base& txn, db::Connection& conn,
                       const std::vector<EventEnvelope>& events);
  bool alias_ok(const EventEnvelope& e) const;
  void open_listener();
  void wait_for_news(std::chrono::milliseconds d, std::unique_lock<std::mutex>& lock);
  std::string sql(std::string_view text) const { return state_->sql(text); }
  FeedPosition unit_start(const Unit& u) const;

  std::shared_ptr<const StoreState> state_;
  std::string name_;
  std::string group_;  ///< "" without a group
  std::string member_;
  SubscriptionOptions opt_;
  runtime::RetryPolicy retry_;
  runtime::Leases leases_;
  runtime::Checkpoints checkpoints_;
  runtime::Parking parking_;
  runtime::Ticker ticker_;
  subscriptions::Definition def_;
  std::optional<subscriptions::GroupRow> group_row_;
  bool gone_ = false;  ///< the definition or the group was deleted
  std::vector<Unit> units_;
  std::deque<Ready> ready_;
  std::map<std::int64_t, Out> out_;
  /// Acknowledged through ack_in: they leave out_ at the next take(), not before, so a caller
  /// whose transaction failed after ack_in can retry the event and acknowledge it again.
  std::vector<std::int64_t> acked_in_txn_;
  /// ack_in found these taken over by another member (or the lease lost): the failure of their
  /// handler is not to be retried or parked. Cleared at the next take().
  std::set<std::int64_t> lost_;
  std::optional<std::int64_t> last_auto_;
  bool last_redelivery_ = false;  ///< the event take() returned last was a redelivery
  std::optional<Retrying> retrying_;
  bool stopped_ = false;  ///< run_available: an event used its attempts up under kStop
  std::chrono::steady_clock::time_point next_heartbeat_{};
  std::chrono::steady_clock::time_point next_renewal_{};  ///< stay_alive's next keep_leases()
  std::chrono::steady_clock::time_point last_flush_{};
  std::map<Uuid, bool> alias_match_;
  std::unique_ptr<db::Connection> listen_conn_;
  std::unique_ptr<pqxx::notification_receiver> listener_;
  std::mutex mu_;
  bool closed_ = false;
};

}  // namespace rillflow::detail
