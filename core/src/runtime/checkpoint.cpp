#include "runtime/checkpoint.hpp"
#include "db/sql.hpp"

#include <rillflow/error.hpp>

namespace rillflow::runtime {

namespace {

constexpr const char* kWrite = R"sql(
update {schema}.work_units set
  from_tick = $5, to_tick = $6, after_seq = $7,
  last_global_seq = greatest(last_global_seq, $8),
  lease_expires_at = now() + $9 * interval '1 millisecond',
  attempts = $10,
  backoff_until = to_timestamp($11::double precision / 1000000),
  last_error = $12,
  stopped = stopped or $13,
  updated_at = to_timestamp($14::double precision / 1000000)
where kind = $1 and name = $2 and lease_owner = $3 and lease_epoch = $4
  and (from_tick < $5 or (from_tick = $5 and after_seq <= $7))
)sql";

constexpr const char* kDiagnose =
    "select 1 from {schema}.work_units where kind = $1 and name = $2 and lease_owner = $3 and "
    "lease_epoch = $4";

constexpr const char* kReset = R"sql(
update {schema}.work_units set from_tick = $3, to_tick = $4, after_seq = $5,
  last_global_seq = $6, attempts = 0, backoff_until = null, stopped = false,
  last_error = null, updated_at = now()
where kind = $1 and name = $2
)sql";

constexpr const char* kAdvance = R"sql(
update {schema}.work_units set from_tick = $3, to_tick = $4, after_seq = $5,
  last_global_seq = greatest(last_global_seq, $6), updated_at = now()
where kind = $1 and name = $2
  and (from_tick < $3 or (from_tick = $3 and after_seq < $5)
       or (from_tick = $3 and after_seq = $5 and to_tick <> $4 and $4 <> 0))
)sql";

}  // namespace

Checkpoints::Checkpoints(const detail::StoreState& state)
    : write_sql_(state.sql(kWrite)),
      diagnose_sql_(state.sql(kDiagnose)),
      reset_sql_(state.sql(kReset)),
      advance_sql_(state.sql(kAdvance)) {}

bool Checkpoints::advance(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                          FeedPosition position, std::int64_t last_global_seq) const {
  return db::exec(txn, conn, advance_sql_, key.kind, key.name, position.from_tick, position.to_tick,
                  position.after_seq, last_global_seq)
             .affected_rows() == 1;
}

void Checkpoints::write(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                        const std::string& owner, std::int64_t epoch, std::chrono::milliseconds ttl,
                        std::chrono::system_clock::time_point now, const CheckpointWrite& w) const {
  std::optional<std::int64_t> backoff;
  if (w.backoff_until) backoff = to_micros(*w.backoff_until);
  const auto r =
      db::exec(txn, conn, write_sql_, key.kind, key.name, owner, epoch, w.position.from_tick,
               w.position.to_tick, w.position.after_seq, w.last_global_seq, ttl.count(), w.attempts,
               backoff, w.last_error, w.stop, to_micros(now));
  if (r.affected_rows() == 1) return;
  if (db::exec(txn, conn, diagnose_sql_, key.kind, key.name, owner, epoch).empty()) {
    throw LeaseLost(key.kind, key.name, epoch);
  }
  throw Error(ErrorCode::kInternal,
              "the checkpoint of " + describe(key) + " would move backwards; not written");
}

void Checkpoints::reset(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                        FeedPosition position, std::int64_t last_global_seq) const {
  db::exec(txn, conn, reset_sql_, key.kind, key.name, position.from_tick, position.to_tick,
           position.after_seq, last_global_seq);
}

}  // namespace rillflow::runtime
