#pragma once
// Checkpoint: how far a unit of work has come in the feed, written in the caller's transaction
// (so a consumer's own writes and its checkpoint commit together). A write is conditional on the
// lease (owner and fencing epoch) and never moves the position backwards; it also persists the
// retry state and extends the lease, so a batch ends with one statement. Only an operator's
// reset moves a checkpoint back.

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

struct CheckpointWrite {
  FeedPosition position;
  std::int64_t last_global_seq = 0;  ///< the highest handled; kept when lower than stored
  int attempts = 0;                  ///< failed attempts of the event now at the head
  std::optional<std::chrono::system_clock::time_point> backoff_until;
  std::optional<std::string> last_error;
  bool stop = false;  ///< stop the unit (the kStop failure policy) until an operator resumes it
};

class Checkpoints {
 public:
  explicit Checkpoints(const detail::StoreState& state);

  /// Writes the checkpoint of `key` held under (`owner`, `epoch`), extending the lease by `ttl`.
  /// Throws LeaseLost when the lease is no longer ours, rillflow::Error (kInternal) when the
  /// position would move backwards.
  void write(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
             const std::string& owner, std::int64_t epoch, std::chrono::milliseconds ttl,
             std::chrono::system_clock::time_point now, const CheckpointWrite& w) const;
  /// For a unit several runtimes work on at once (a consumer group whose members share it, the
  /// caller holding the unit's row lock): moves the position forward without a lease; a position
  /// at or behind the stored one is left as it is (returns false).
  bool advance(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
               FeedPosition position, std::int64_t last_global_seq) const;
  /// The operator's move: position, last_global_seq, retry state and the stop flag reset.
  void reset(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
             FeedPosition position, std::int64_t last_global_seq) const;

 private:
  std::string write_sql_, diagnose_sql_, reset_sql_, advance_sql_;
};

}  // namespace rillflow::runtime
