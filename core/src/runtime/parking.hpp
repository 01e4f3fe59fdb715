#pragma once
// Parking (the DLQ): events a unit of work gave up on, kept with the error and the attempts in
// {schema}.parked (kind, name, id), for any kind. An operator requeues one (the next batch of
// the unit delivers it once, under its own savepoint: success removes it, failure keeps it with
// attempts + 1) or deletes it. Every call runs in the caller's transaction.

#include "db/pool.hpp"
#include "runtime/work_unit.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>
#include <rillflow/projections/projection_daemon.hpp>

#include <pqxx/pqxx>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rillflow::runtime {

/// A parked event; DlqEntry::projection holds the unit's name.
using ParkedEvent = DlqEntry;

class Parking {
 public:
  explicit Parking(const detail::StoreState& state);

  void park(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
            const EventEnvelope& event, const std::string& error, int attempts) const;
  /// The entries waiting for redelivery, oldest first, locked until the transaction ends.
  std::vector<ParkedEvent> take_requeued(pqxx::transaction_base& txn, db::Connection& conn,
                                         const UnitKey& key) const;
  /// For consumers that hand events out and settle them later: the requeued entries, oldest
  /// first, no longer marked requeued (so they go out once); settle() them when handled.
  std::vector<ParkedEvent> claim_requeued(pqxx::transaction_base& txn, db::Connection& conn,
                                          const UnitKey& key) const;
  /// After a redelivery: removes the entry (nullopt error) or records the new failure.
  void settle(pqxx::transaction_base& txn, db::Connection& conn, std::int64_t id,
              const std::optional<std::string>& error) const;

  std::vector<ParkedEvent> list(pqxx::transaction_base& txn, db::Connection& conn,
                                const UnitKey& key, std::size_t limit) const;
  bool requeue(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
               std::int64_t id) const;
  bool remove(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
              std::int64_t id) const;
  /// Deletes every parked event of the unit (a rebuild).
  void clear(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key) const;
  /// Replaces the parked events of `to` by those of `from` (a shadow rebuild's swap).
  void transfer(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& from,
                const UnitKey& to) const;

 private:
  std::string park_sql_, requeued_sql_, claim_sql_, delete_sql_, failed_again_sql_, list_sql_,
      requeue_sql_, remove_sql_, clear_sql_, transfer_sql_;
};

}  // namespace rillflow::runtime
