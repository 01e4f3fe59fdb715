#pragma once

#include <rillflow/events/event.hpp>
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
  /// Called at the start of every batch transaction, before apply(): create the read model's
  /// tables here (`create table if not exists ...`). The default does nothing.
  virtual void prepare(Transaction& txn) { (void)txn; }
  /// Clears the read model before a rebuild. The default does nothing.
  virtual void reset(Transaction& txn) { (void)txn; }
};

}  // namespace rillflow
