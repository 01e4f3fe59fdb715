#pragma once

#include <rillflow/events/event.hpp>
#include <rillflow/projections/event_batch.hpp>
#include <rillflow/projections/transaction.hpp>

namespace rillflow {

/// Turns events into a read model. Implementations write only through the Transaction they are
/// given, so their writes commit together with the projection's checkpoint.
///
/// apply() is called once per event in feed order (retried after a failure, see
/// ProjectionOptions); throwing (or a failing statement) marks the event as failed and undoes
/// that event's writes. One handler instance serves one projection; the runtime never calls it
/// from two threads at once.
class ProjectionHandler {
 public:
  virtual ~ProjectionHandler() = default;
  virtual void apply(const EventEnvelope& event, Transaction& txn) = 0;
  /// The runtime's fast path: every event of one batch the projection wants, at once, in feed
  /// order, so a handler can write them with one multi-row statement (unnest of arrays, COPY).
  /// The default calls apply() for each event. When it throws (or a statement fails) the batch's
  /// writes are rolled back and the runtime applies the same events again one by one through
  /// apply(), each under a savepoint, so the failing event is retried or parked by name and the
  /// others are kept: apply_batch and apply must have the same effect.
  virtual void apply_batch(const EventBatch& events, Transaction& txn) {
    for (const auto& event : events) apply(event, txn);
  }
  /// Called at the start of every batch transaction, before apply(): create the read model's
  /// tables here (`create table if not exists ...`). The default does nothing.
  virtual void prepare(Transaction& txn) { (void)txn; }
  /// Clears the read model before a rebuild. The default does nothing.
  virtual void reset(Transaction& txn) { (void)txn; }
  /// Whether `projections rebuild NAME --shadow` may build this read model beside the live one.
  /// Return true only when the handler keeps the contract of docs/projections.md ("Shadow
  /// rebuilds"): prepare() creates every relation it writes, unqualified or qualified with
  /// txn.target_schema(), and apply() has no effect outside them (no outbox, no file, no call).
  virtual bool supports_shadow_rebuild() const { return false; }
};

}  // namespace rillflow
