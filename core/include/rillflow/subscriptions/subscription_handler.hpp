#pragma once

#include <rillflow/events/event.hpp>
#include <rillflow/projections/transaction.hpp>

namespace rillflow {

/// What rillflowd runs for a subscription of its `subscriptions:` registry (a plugin declared
/// with RILLFLOW_SUBSCRIPTION_PLUGIN, rillflow/plugin/plugin_api.hpp).
///
/// handle() is called once per delivered event, in a transaction the daemon opened for it. With
/// `ack: in_transaction` the event's acknowledgement is written in that same transaction, so its
/// side effects (an outbox row, say) and the acknowledgement commit together: exactly once. With
/// `ack: after_handler` the transaction commits first and the acknowledgement follows (at least
/// once: a crash in between delivers the event again). Throwing rolls the transaction back; the
/// event is retried after the configured delay, then parked. One instance serves one unit
/// (a subscription, or one partition of a group) and is never called from two threads at once.
class SubscriptionHandler {
 public:
  virtual ~SubscriptionHandler() = default;
  virtual void handle(const EventEnvelope& event, Transaction& txn) = 0;
  /// Called in its own transaction before the first event a unit hands over (again after a
  /// reload or takeover): create the tables the handler writes here. The default does nothing.
  virtual void prepare(Transaction& txn) { (void)txn; }
};

}  // namespace rillflow
