// Store::projections(): waiting for a projection (wait_for) and what holds it back (blocked_by).
// docs/operators.md explains both.

#include <rillflow/projections/projections.hpp>

#include "db/sql.hpp"
#include "store_state.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

namespace rillflow {

namespace {

constexpr const char* kKind = "projection";

// One check: is the event at $3 covered by the stored position of unit ($1, $2)? Covered when
// its transaction is visible in the consumed tick's snapshot, or it lies in the pinned batch
// (visible in to_tick's) at or below after_seq. No row: the unit does not exist.
constexpr const char* kCheck = R"sql(
select u.last_global_seq, u.paused, u.stopped, e.global_seq is not null,
       coalesce(pg_visible_in_snapshot(e.tx_id, f.snapshot), false)
       or (u.to_tick <> 0 and u.after_seq >= $3
           and coalesce(pg_visible_in_snapshot(e.tx_id, t.snapshot), false)),
       exists (select 1 from {schema}.parked d
               where d.kind = $1 and d.name = $2 and d.global_seq = $3)
from {schema}.work_units u
left join {schema}.events e on e.global_seq = $3
left join {schema}.ticks f on f.tick_id = u.from_tick
left join {schema}.ticks t on t.tick_id = u.to_tick
where u.kind = $1 and u.name = $2
)sql";

// Committed events up to $3 the unit has still to handle (for the timeout message only): not
// visible in the consumed tick (the index ranges of the feed's batch query), minus the pinned
// batch's part at or below after_seq.
constexpr const char* kBehind = R"sql(
select count(*)
from {schema}.work_units u
join {schema}.ticks f on f.tick_id = u.from_tick
left join {schema}.ticks t on t.tick_id = u.to_tick
join {schema}.events e
  on (e.tx_id >= pg_snapshot_xmax(f.snapshot)
      or e.tx_id = any(array(select pg_snapshot_xip(f.snapshot))))
 and e.global_seq <= $3
where u.kind = $1 and u.name = $2
  and not (u.to_tick <> 0 and e.global_seq <= u.after_seq
           and coalesce(pg_visible_in_snapshot(e.tx_id, t.snapshot), false))
)sql";

// Open transactions that hold a RowExclusiveLock on the events table (so they inserted events),
// whose top-level xid is in progress in the snapshot of the newest tick the unit consumed.
// pg_locks is readable by every role; pg_stat_activity hides other roles' details.
constexpr const char* kBlockers = R"sql(
with consumed as (
  select t.snapshot from {schema}.work_units u
  join {schema}.ticks t
    on t.tick_id = case when u.to_tick <> 0 then u.to_tick else u.from_tick end
  where u.kind = $1 and u.name = $2),
in_progress as (
  select (x::text::bigint % 4294967296) as xid
  from consumed, pg_snapshot_xip(consumed.snapshot) x),
appenders as (
  select distinct l.virtualtransaction, l.pid from pg_locks l
  where l.locktype = 'relation' and l.mode = 'RowExclusiveLock' and l.granted
    and l.database = (select oid from pg_database where datname = current_database())
    and l.relation = to_regclass($3)
    and l.pid is distinct from pg_backend_pid()),
xids as (
  select l.virtualtransaction, min(l.transactionid::text::bigint) as xid from pg_locks l
  where l.locktype = 'transactionid' and l.mode = 'ExclusiveLock' and l.granted
  group by l.virtualtransaction)
select a.pid, x.xid, extract(epoch from now() - s.xact_start)::float8, s.state,
       s.application_name, left(s.query, 200)
from appenders a
join xids x on x.virtualtransaction = a.virtualtransaction
left join pg_stat_activity s on s.pid = a.pid
where x.xid in (select xid from in_progress)
order by s.xact_start nulls last, x.xid
)sql";

void require_name(const std::string& name) {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a projection name must not be empty");
}

template <class T>
std::optional<T> optional_of(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.template as<T>();
}

}  // namespace

ProjectionWaitTimeout::ProjectionWaitTimeout(std::string message, std::string projection,
                                             std::int64_t position, std::int64_t projection_at,
                                             std::int64_t behind, bool committed)
    : Error(ErrorCode::kTimeout, message),
      projection_(std::move(projection)),
      position_(position),
      projection_at_(projection_at),
      behind_(behind),
      committed_(committed) {}

std::string FeedBlocker::message() const {
  std::string out = "waiting for transaction " + std::to_string(xid) + " (";
  out += pid ? "pid " + std::to_string(*pid) : std::string("prepared transaction");
  if (age_seconds) out += ", open " + std::to_string(std::llround(*age_seconds)) + " s";
  if (application_name && !application_name->empty()) out += ", " + *application_name;
  out += ")";
  return out;
}

Json to_json(const FeedBlocker& b) {
  boost::json::object o;
  o["pid"] = b.pid ? Json(*b.pid) : Json(nullptr);
  o["xid"] = b.xid;
  o["age_seconds"] = b.age_seconds ? Json(*b.age_seconds) : Json(nullptr);
  o["state"] = b.state ? Json(*b.state) : Json(nullptr);
  o["application_name"] = b.application_name ? Json(*b.application_name) : Json(nullptr);
  o["query"] = b.query ? Json(*b.query) : Json(nullptr);
  o["message"] = b.message();
  return o;
}

Projections::Projections(std::shared_ptr<const detail::StoreState> state)
    : state_(std::move(state)) {}

ProjectionWaitResult Projections::wait_for(const std::string& name, const AppendResult& appended,
                                           std::chrono::milliseconds timeout,
                                           ProjectionWaitOptions options) const {
  return wait_for(name, appended.last_global_seq, timeout, options);
}

ProjectionWaitResult Projections::wait_for(const std::string& name, std::int64_t position,
                                           std::chrono::milliseconds timeout,
                                           ProjectionWaitOptions options) const {
  require_name(name);
  if (position < 0) {
    throw Error(ErrorCode::kInvalidArgument, "a position to wait for must not be negative");
  }
  if (timeout.count() < 0) throw Error(ErrorCode::kInvalidArgument, "a negative timeout");
  using Steady = std::chrono::steady_clock;
  const auto start = Steady::now();
  const auto deadline = start + timeout;
  const std::string check_sql = state_->sql(kCheck);
  auto interval = std::max(options.initial_interval, std::chrono::milliseconds(0));
  ProjectionWaitResult result;
  result.position = position;
  for (;;) {
    struct Seen {
      std::int64_t at = 0;
      bool paused = false, stopped = false, committed = false, handled = false, parked = false;
    };
    const auto seen =
        db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
          const auto r = db::exec(txn, conn, check_sql, kKind, name, position);
          if (r.empty()) throw NotFound("projection", name);
          Seen s;
          s.at = r[0][0].template as<std::int64_t>();
          s.paused = r[0][1].template as<bool>();
          s.stopped = r[0][2].template as<bool>();
          s.committed = r[0][3].template as<bool>();
          s.handled = r[0][4].template as<bool>();
          s.parked = r[0][5].template as<bool>();
          return s;
        });
    ++result.checks;
    if (position == 0 || seen.handled) {
      result.parked = seen.parked;
      result.waited = std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - start);
      return result;
    }
    const auto now = Steady::now();
    if (now >= deadline) {
      const std::int64_t behind =
          db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
            return db::exec(txn, conn, state_->sql(kBehind), kKind, name, position)[0][0]
                .template as<std::int64_t>();
          });
      std::string msg = "projection '" + name + "' has not handled global_seq " +
                        std::to_string(position) + " after " + std::to_string(timeout.count()) +
                        " ms: ";
      if (!seen.committed) {
        msg += "no committed event has that position (not committed yet, or rolled back); ";
      }
      msg += "it is at " + std::to_string(seen.at) + " with " + std::to_string(behind) +
             " committed event(s) up to " + std::to_string(position) + " left";
      if (seen.paused) msg += ", paused";
      if (seen.stopped) msg += ", stopped by its failure policy";
      throw ProjectionWaitTimeout(msg, name, position, seen.at, behind, seen.committed);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    std::this_thread::sleep_for(std::min(interval, left + std::chrono::milliseconds(1)));
    interval = std::min(std::max(interval * 2, std::chrono::milliseconds(1)), options.max_interval);
  }
}

std::vector<FeedBlocker> Projections::blocked_by(const std::string& name) const {
  require_name(name);
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    const auto known = db::exec(
        txn, conn, state_->sql("select 1 from {schema}.work_units where kind = $1 and name = $2"),
        kKind, name);
    if (known.empty()) throw NotFound("projection", name);
    const auto rows =
        db::exec(txn, conn, state_->sql(kBlockers), kKind, name, state_->quoted_schema + ".events");
    std::vector<FeedBlocker> out;
    for (const auto& r : rows) {
      FeedBlocker b;
      b.pid = optional_of<int>(r[0]);
      b.xid = r[1].template as<std::int64_t>();
      b.age_seconds = optional_of<double>(r[2]);
      b.state = optional_of<std::string>(r[3]);
      b.application_name = optional_of<std::string>(r[4]);
      b.query = optional_of<std::string>(r[5]);
      out.push_back(std::move(b));
    }
    return out;
  });
}

}  // namespace rillflow
