#pragma once
// Lease: which runtime may work on a unit of work now. acquire / renew / fence / release over
// {schema}.work_units (see work_unit.hpp), with no session-level locks (works behind PgBouncer in
// transaction mode).
//
//   acquire  takes or renews the lease (autocommit statement) unless another owner's is still
//            valid or that owner is inside a batch (it holds the row lock: SKIP LOCKED backs off
//            instead of queueing). Taking it from someone else bumps the fencing epoch.
//   fence    first statement of a batch transaction: locks the row if owner and epoch still
//            match, else LeaseLost. From then until COMMIT nobody can take the lease over, so
//            everything the transaction writes is fenced.
//   release  gives the lease up (owner cleared) so another runtime takes over at once.
// Renewal rides on every checkpoint write (Checkpoints::write extends the expiry).

#include "db/pool.hpp"
#include "runtime/work_unit.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace rillflow::runtime {

/// The unit's row as a successful acquire or fence sees it.
struct UnitState {
  std::int64_t epoch = 0;
  bool paused = false;
  bool stopped = false;
  /// Set while a failed event waits for its retry (compared with the runtime's clock).
  std::optional<std::chrono::system_clock::time_point> backoff_until;
  FeedPosition position;
  int attempts = 0;       ///< failed attempts of the event at the head
  bool requeued = false;  ///< parked events wait for redelivery
};

class Leases {
 public:
  Leases(const detail::StoreState& state, std::string owner, std::chrono::milliseconds ttl);

  const std::string& owner() const noexcept { return owner_; }
  std::chrono::milliseconds ttl() const noexcept { return ttl_; }

  /// Creates the unit's row when missing (at `start`, by default the start of the feed; no lease).
  void ensure(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
              FeedPosition start = {}) const;
  /// Takes or renews the lease; nullopt when another runtime holds it. Run it in autocommit mode
  /// (a nontransaction), so the expiry others see is the renewed one.
  std::optional<UnitState> acquire(pqxx::transaction_base& txn, db::Connection& conn,
                                   const UnitKey& key) const;
  /// As acquire, throwing LeaseHeldElsewhere instead of returning nullopt.
  UnitState acquire_or_throw(pqxx::transaction_base& txn, db::Connection& conn,
                             const UnitKey& key) const;
  /// Inside a transaction: locks the unit's row while owner and `epoch` still hold it and returns
  /// its position and attempts; throws LeaseLost otherwise.
  UnitState fence(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                  std::int64_t epoch) const;
  /// Gives the lease up when this owner holds it (a no-op otherwise).
  void release(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key) const;
  /// An operator's move: takes the lease from whoever holds it (their next fence or checkpoint
  /// write fails with LeaseLost, and a new acquire bumps the epoch).
  void revoke(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key) const;

 private:
  std::string owner_;
  std::chrono::milliseconds ttl_;
  std::string ensure_sql_, acquire_sql_, fence_sql_, release_sql_, revoke_sql_;
};

}  // namespace rillflow::runtime
