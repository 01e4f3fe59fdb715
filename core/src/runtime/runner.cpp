#include "runtime/runner.hpp"

#include "db/sql.hpp"
#include "projections/transaction_access.hpp"

#include <rillflow/error.hpp>

#include <algorithm>
#include <vector>

namespace rillflow::runtime {

namespace {

using projections::ExplicitTransaction;

// Keeps the event's work (release) or undoes it (rollback). A release that fails means the
// consumer left the transaction aborted (it swallowed a failing statement): that event failed.
std::optional<std::string> end_savepoint(ExplicitTransaction& tx,
                                         std::optional<std::string> error) {
  if (!error) {
    try {
      tx.release_savepoint();
      return std::nullopt;
    } catch (const std::exception& e) {
      error = std::string("the handler left its transaction aborted: ") + e.what();
    }
  }
  tx.rollback_to_savepoint();
  return error;
}

}  // namespace

Runner::Runner(const detail::StoreState& state, const Leases& leases, WallClock clock)
    : state_(state),
      leases_(leases),
      clock_(std::move(clock)),
      checkpoints_(state),
      parking_(state),
      ticker_(state),
      begin_sql_("begin; set local search_path to " + state.quoted_schema + ", public") {}

BatchResult Runner::run_batch(const UnitKey& key, Consumer& consumer, const RunnerOptions& options,
                              UnitMemo& memo) const {
  return db::with_connection(state_.connections(), [&](db::Connection& conn) -> BatchResult {
    UnitState lease;
    {
      pqxx::nontransaction txn(conn.raw());
      if (!memo.row_known) {
        leases_.ensure(txn, conn, key);
        memo.row_known = true;
      }
      const auto acquired = leases_.acquire(txn, conn, key);
      if (!acquired) {
        memo.epoch.reset();
        return {BatchOutcome::kLeaseHeldElsewhere};
      }
      lease = *acquired;
      memo.epoch = lease.epoch;
      if (lease.paused || lease.stopped) {
        // Hand the lease back: an operator may rebuild it meanwhile, or another runtime resume it.
        leases_.release(txn, conn, key);
        memo.epoch.reset();
        return {lease.paused ? BatchOutcome::kPaused : BatchOutcome::kStopped};
      }
      if (lease.backoff_until && *lease.backoff_until > clock_()) {
        BatchResult r{BatchOutcome::kBackoff};
        r.retry_at = lease.backoff_until;
        return r;
      }
      if (lease.position.to_tick == 0 && !lease.requeued) {
        const auto newest =
            options.external_ticker ? ticker_.newest(txn, conn) : ticker_.tick(txn, conn);
        if (newest <= lease.position.from_tick) return {BatchOutcome::kIdle};
      }
    }
    if (auto r = attempt(conn, key, consumer, options, lease, Mode::kFast)) return *r;
    return *attempt(conn, key, consumer, options, lease, Mode::kCareful);
  });
}

std::optional<BatchResult> Runner::attempt(db::Connection& conn, const UnitKey& key,
                                           Consumer& consumer, const RunnerOptions& options,
                                           const UnitState& lease, Mode mode) const {
  ExplicitTransaction tx(conn, begin_sql_);
  auto& txn = *tx;
  UnitState fenced;
  try {
    fenced = leases_.fence(txn, conn, key, lease.epoch);
  } catch (const LeaseLost&) {
    return BatchResult{BatchOutcome::kLeaseLost};
  }
  if (!(fenced.position == lease.position)) return BatchResult{BatchOutcome::kIdle};  // an admin

  BatchResult result{BatchOutcome::kProcessed};
  consumer.begin_batch(txn, conn);
  if (lease.requeued) {
    // Requeued parked events: each delivered once under its own savepoint.
    for (const auto& entry : parking_.take_requeued(txn, conn, key)) {
      tx.savepoint();
      const auto error = end_savepoint(tx, consumer.apply(entry.event, txn, conn));
      parking_.settle(txn, conn, entry.id, error);
      ++(error ? result.failed : result.processed);
    }
  }
  const auto batch = read_batch(txn, conn, state_, lease.position, options.batch_size,
                                [&] { return ticker_.newest(txn, conn); });
  if (batch.events.empty() && !lease.requeued && batch.next == lease.position) {
    return BatchResult{BatchOutcome::kIdle};
  }

  const auto now = clock_();
  CheckpointWrite w;
  w.position = lease.position;
  w.attempts = lease.attempts;
  auto commit = [&] {
    checkpoints_.write(txn, conn, key, leases_.owner(), lease.epoch, leases_.ttl(), now, w);
    tx.commit();
  };
  if (mode == Mode::kFast) {
    // The whole batch in one call; any failure: roll back and redo it event by event.
    std::vector<const EventEnvelope*> wanted;
    wanted.reserve(batch.events.size());
    for (const auto& event : batch.events) {
      if (consumer.wants(event)) wanted.push_back(&event);
      w.last_global_seq = std::max(w.last_global_seq, event.global_seq);
    }
    if (!wanted.empty()) {
      if (consumer.apply_batch(EventBatch(wanted.data(), wanted.size()), txn, conn)) {
        return std::nullopt;
      }
      w.attempts = 0;
    }
    result.processed += batch.events.size();
    w.position = batch.next;
    commit();
    if (result.processed == 0 && result.failed == 0) result.outcome = BatchOutcome::kIdle;
    return result;
  }
  for (std::size_t i = 0; i < batch.events.size(); ++i) {
    const auto& event = batch.events[i];
    if (consumer.wants(event)) {
      tx.savepoint();
      auto error = end_savepoint(tx, consumer.apply(event, txn, conn));
      if (error) {
        ++result.failed;
        w.last_error =
            "event " + std::to_string(event.global_seq) + " (" + event.type + "): " + *error;
        ++w.attempts;
        switch (options.retry.after_failure(w.attempts)) {
          case RetryPolicy::Action::kRetry:
            w.backoff_until = now + options.retry.delay(w.attempts);
            commit();
            result.outcome = BatchOutcome::kBackoff;
            result.retry_at = w.backoff_until;
            return result;
          case RetryPolicy::Action::kStop:
            w.stop = true;
            commit();
            result.outcome = BatchOutcome::kStopped;
            return result;
          case RetryPolicy::Action::kPark:
            parking_.park(txn, conn, key, event, *error, w.attempts);
            ++result.parked;
            break;
        }
      }
      w.attempts = 0;
    }
    w.position = batch.positions[i];
    w.last_global_seq = std::max(w.last_global_seq, event.global_seq);
    ++result.processed;
  }
  w.position = batch.next;
  commit();
  if (result.processed == 0 && result.failed == 0) result.outcome = BatchOutcome::kIdle;
  return result;
}

void Runner::release(const UnitKey& key, UnitMemo& memo) const {
  if (!memo.epoch) return;
  db::without_transaction(
      state_.connections(),
      [&](pqxx::nontransaction& txn, db::Connection& conn) { leases_.release(txn, conn, key); });
  memo.epoch.reset();
}

}  // namespace rillflow::runtime
