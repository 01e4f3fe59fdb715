#pragma once
// Runner: one batch of one unit of work, written once for every consumer kind.
//
// On one pooled connection (one checkout): take or renew the lease and (when no daemon ticks)
// create a tick, in autocommit statements; then one transaction that fences the lease, reads the
// batch, applies each event through the Consumer and writes the checkpoint with the retry state.
// The first attempt (the fast path) hands the consumer every wanted event of the batch at once
// (Consumer::apply_batch) without savepoints; when it fails the attempt is rolled back and the
// batch runs again event by event with every event under its own savepoint (explicit SAVEPOINT
// statements, see ExplicitTransaction), so one event's failure is undone and the rest kept. A
// failed event is retried after RetryPolicy::delay (the checkpoint stops just before it), then
// parked or the unit stopped. Consumers run with search_path = the store's schema, then public.

#include "db/pool.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/feed_reader.hpp"
#include "runtime/lease.hpp"
#include "runtime/parking.hpp"
#include "runtime/retry.hpp"
#include "runtime/work_unit.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>
#include <rillflow/projections/event_batch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace rillflow::runtime {

/// What a consumer kind plugs into the runner.
class Consumer {
 public:
  virtual ~Consumer() = default;
  /// Whether the event goes to apply(); the others still advance the checkpoint.
  virtual bool wants(const EventEnvelope&) const { return true; }
  /// Once per batch transaction, before any event (a handler's prepare hook). May throw: the
  /// batch is rolled back and the error propagates.
  virtual void begin_batch(pqxx::transaction_base&, db::Connection&) {}
  /// Applies one event in the batch transaction; returns the failure's message. Must not throw.
  virtual std::optional<std::string> apply(const EventEnvelope& event, pqxx::transaction_base& txn,
                                           db::Connection& conn) = 0;
  /// The fast path: every wanted event of the batch (in feed order) in one call; returns the
  /// failure's message, and the runner then redoes the batch event by event through apply().
  /// Must not throw. The default calls apply() for each event.
  virtual std::optional<std::string> apply_batch(const EventBatch& events,
                                                 pqxx::transaction_base& txn,
                                                 db::Connection& conn) {
    for (const auto& event : events) {
      if (auto error = apply(event, txn, conn)) return error;
    }
    return std::nullopt;
  }
};

enum class BatchOutcome {
  kIdle,       ///< nothing new
  kProcessed,  ///< events handled and checkpointed
  kPaused,     ///< paused by an operator (the lease was handed back)
  kStopped,    ///< stopped by the kStop policy (the lease was handed back)
  kBackoff,    ///< a failed event waits until retry_at
  kLeaseHeldElsewhere,
  kLeaseLost,  ///< the lease was taken over between acquire and the batch: nothing committed
};

struct BatchResult {
  BatchOutcome outcome = BatchOutcome::kIdle;
  std::size_t processed = 0;  ///< events handled (filtered-out ones included)
  std::size_t failed = 0;     ///< failures this batch (retried later, parked, or stopping)
  std::size_t parked = 0;     ///< events parked this batch
  std::optional<std::chrono::system_clock::time_point> retry_at;  ///< with kBackoff
};

struct RunnerOptions {
  std::size_t batch_size = 500;
  RetryPolicy retry;
  /// True when a daemon's Ticker creates ticks; false: the runner ticks before a batch.
  bool external_ticker = false;
};

/// What a runtime remembers of one unit between batches (guarded by the caller).
struct UnitMemo {
  bool row_known = false;             ///< its work_units row exists
  std::optional<std::int64_t> epoch;  ///< the lease epoch held, when held
};

class Runner {
 public:
  Runner(const detail::StoreState& state, const Leases& leases, WallClock clock);

  BatchResult run_batch(const UnitKey& key, Consumer& consumer, const RunnerOptions& options,
                        UnitMemo& memo) const;
  /// Gives the unit's lease back when held.
  void release(const UnitKey& key, UnitMemo& memo) const;

  const Checkpoints& checkpoints() const noexcept { return checkpoints_; }
  const Parking& parking() const noexcept { return parking_; }
  const Ticker& ticker() const noexcept { return ticker_; }
  const WallClock& clock() const noexcept { return clock_; }

 private:
  enum class Mode { kFast, kCareful };
  std::optional<BatchResult> attempt(db::Connection& conn, const UnitKey& key, Consumer& consumer,
                                     const RunnerOptions& options, const UnitState& lease,
                                     Mode mode) const;

  const detail::StoreState& state_;
  const Leases& leases_;
  WallClock clock_;
  Checkpoints checkpoints_;
  Parking parking_;
  Ticker ticker_;
  std::string begin_sql_;
};

}  // namespace rillflow::runtime
