#include "runtime/lease.hpp"
#include "db/sql.hpp"

#include <rillflow/error.hpp>

namespace rillflow::runtime {

namespace {

constexpr const char* kEnsure =
    "insert into {schema}.work_units (kind, name, from_tick, to_tick, after_seq) "
    "values ($1, $2, $3, $4, $5) on conflict do nothing";

constexpr const char* kAcquire = R"sql(
with c as (select kind, name from {schema}.work_units where kind = $1 and name = $2
           for update skip locked)
update {schema}.work_units u set
  lease_epoch = case when u.lease_owner = $3 then u.lease_epoch else u.lease_epoch + 1 end,
  lease_owner = $3,
  lease_expires_at = now() + $4 * interval '1 millisecond'
from c
where u.kind = c.kind and u.name = c.name
  and (u.lease_owner is null or u.lease_owner = $3 or u.lease_expires_at < now())
returning u.lease_epoch, u.paused, u.stopped,
          (extract(epoch from u.backoff_until) * 1000000)::bigint,
          u.from_tick, u.to_tick, u.after_seq, u.attempts,
          exists (select 1 from {schema}.parked p
                  where p.kind = u.kind and p.name = u.name and p.requeued_at is not null)
)sql";

constexpr const char* kFence = R"sql(
select lease_epoch, paused, stopped, (extract(epoch from backoff_until) * 1000000)::bigint,
       from_tick, to_tick, after_seq, attempts, false
from {schema}.work_units
where kind = $1 and name = $2 and lease_owner = $3 and lease_epoch = $4 for update
)sql";

constexpr const char* kRelease =
    "update {schema}.work_units set lease_owner = null, lease_expires_at = null "
    "where kind = $1 and name = $2 and lease_owner = $3";

constexpr const char* kRevoke =
    "update {schema}.work_units set lease_owner = null, lease_expires_at = null "
    "where kind = $1 and name = $2";

UnitState state_from(const pqxx::row& r) {
  UnitState s;
  s.epoch = r[0].as<std::int64_t>();
  s.paused = r[1].as<bool>();
  s.stopped = r[2].as<bool>();
  if (!r[3].is_null()) s.backoff_until = from_micros(r[3].as<std::int64_t>());
  s.position = {r[4].as<std::int64_t>(), r[5].as<std::int64_t>(), r[6].as<std::int64_t>()};
  s.attempts = r[7].as<int>();
  s.requeued = r[8].as<bool>();
  return s;
}

}  // namespace

Leases::Leases(const detail::StoreState& state, std::string owner, std::chrono::milliseconds ttl)
    : owner_(std::move(owner)),
      ttl_(ttl),
      ensure_sql_(state.sql(kEnsure)),
      acquire_sql_(state.sql(kAcquire)),
      fence_sql_(state.sql(kFence)),
      release_sql_(state.sql(kRelease)),
      revoke_sql_(state.sql(kRevoke)) {}

void Leases::ensure(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                    FeedPosition start) const {
  db::exec(txn, conn, ensure_sql_, key.kind, key.name, start.from_tick, start.to_tick,
           start.after_seq);
}

std::optional<UnitState> Leases::acquire(pqxx::transaction_base& txn, db::Connection& conn,
                                         const UnitKey& key) const {
  const auto r = db::exec(txn, conn, acquire_sql_, key.kind, key.name, owner_, ttl_.count());
  if (r.empty()) return std::nullopt;
  return state_from(r[0]);
}

UnitState Leases::acquire_or_throw(pqxx::transaction_base& txn, db::Connection& conn,
                                   const UnitKey& key) const {
  auto s = acquire(txn, conn, key);
  if (!s) throw LeaseHeldElsewhere(key.kind, key.name);
  return *s;
}

UnitState Leases::fence(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                        std::int64_t epoch) const {
  const auto r = db::exec(txn, conn, fence_sql_, key.kind, key.name, owner_, epoch);
  if (r.empty()) throw LeaseLost(key.kind, key.name, epoch);
  return state_from(r[0]);
}

void Leases::release(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key) const {
  db::exec(txn, conn, release_sql_, key.kind, key.name, owner_);
}

void Leases::revoke(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key) const {
  db::exec(txn, conn, revoke_sql_, key.kind, key.name);
}

}  // namespace rillflow::runtime
