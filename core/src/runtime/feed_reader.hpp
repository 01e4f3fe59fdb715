#pragma once
// The feed reader: the one column list and the one envelope decoder of every event read (the
// event store's read_stream / read_feed, the runtime's batches, parked events), the batch query
// between two ticks (DESIGN §5, docs/ordering.md), and the Ticker that creates ticks.
//
// Reading never writes: read_batch runs in whatever transaction the caller gives it (the
// runtime's batch transaction, so fence, read, apply and checkpoint share one connection and
// one transaction) and learns the newest tick from a callback. Ticks are created by a Ticker:
// the daemon's timer, or the reader itself when no daemon runs (EventStore::read_feed, and
// ProjectionDaemon unless built with external_ticker()), each time in its own short
// transaction, never inside a batch transaction.

#include "db/pool.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>
#include <rillflow/events/event_store.hpp>

#include <pqxx/pqxx>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rillflow::runtime {

/// The envelope columns in decoding order, read from table alias `alias` whose creation time
/// column is `created_at` (events: created_at; parked: event_created_at).
std::string envelope_columns(std::string_view alias, std::string_view created_at = "created_at");
/// Number of columns envelope_columns() selects.
inline constexpr std::size_t kEnvelopeColumnCount = 9;
/// Decodes the envelope whose columns start at `first` (as envelope_columns() lists them).
EventEnvelope envelope_from_row(const pqxx::row& row, std::size_t first = 0);
std::vector<EventEnvelope> envelopes_from(const pqxx::result& result);

/// Creates ticks: one when events committed since the newest tick.
class Ticker {
 public:
  explicit Ticker(const detail::StoreState& state);
  /// Creates a tick when there is news and returns the newest tick id. `txn` must be in
  /// autocommit mode (a nontransaction): the tick commits in its own short transaction, taken
  /// under the ticks table lock so snapshots only grow with tick ids.
  std::int64_t tick(pqxx::transaction_base& txn, db::Connection& conn) const;
  /// The newest tick id, read-only (in any transaction).
  std::int64_t newest(pqxx::transaction_base& txn, db::Connection& conn) const;

 private:
  const detail::StoreState& state_;
  std::string probe_sql_, insert_sql_, newest_sql_;
};

/// Reads up to `limit` committed events after `position` in `txn`. `newest_tick()` is asked for
/// the newest tick whenever a batch between two ticks is exhausted. Throws rillflow::Error
/// (kInvalidArgument) for an invalid position or one naming a tick that does not exist.
FeedBatch read_batch(pqxx::transaction_base& txn, db::Connection& conn,
                     const detail::StoreState& state, FeedPosition position, std::size_t limit,
                     const std::function<std::int64_t()>& newest_tick);

}  // namespace rillflow::runtime
