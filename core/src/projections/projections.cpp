// Store::projections(): waiting for a projection (wait_for) and what holds it back (blocked_by).
// docs/operators.md explains both.

#include <rillflow/projections/projections.hpp>
#include <rillflow/redact.hpp>

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
// with their top-level xid (the lowest transactionid lock of the transaction; pg_locks is
// readable by every role), matched against the in-progress list of the newest tick each stored
// unit consumed: such a unit has delivered later commits but not their events. One statement
// for one unit ($1 kind, $2 name) or, with both null, for every unit. pg_stat_activity adds the
// details it shows this role. blocked_seconds: since the first tick that saw the transaction in
// progress (ticks' snapshots grow with tick_id, so the first tick whose xmax passed its xid).
constexpr const char* kBlockers = R"sql(
with appenders as (
  select distinct l.virtualtransaction, l.pid from pg_locks l
  where l.locktype = 'relation' and l.mode = 'RowExclusiveLock' and l.granted
    and l.database = (select oid from pg_database where datname = current_database())
    and l.relation = to_regclass($3)
    and l.pid is distinct from pg_backend_pid()),
blockers as (
  select a.pid, min(l.transactionid::text::bigint) as xid
  from appenders a
  join pg_locks l on l.virtualtransaction = a.virtualtransaction
  where l.locktype = 'transactionid' and l.mode = 'ExclusiveLock' and l.granted
  group by a.virtualtransaction, a.pid),
waits as (
  select u.kind, u.name, b.pid, b.xid, x as xid8
  from {schema}.work_units u
  join {schema}.ticks t
    on t.tick_id = case when u.to_tick <> 0 then u.to_tick else u.from_tick end
  cross join lateral pg_snapshot_xip(t.snapshot) x
  join blockers b on b.xid = x::text::bigint % 4294967296
  where ($1::text is null or u.kind = $1) and ($2::text is null or u.name = $2)),
first_seen as (
  select d.xid8, (select t.created_at from {schema}.ticks t
                  where pg_snapshot_xmax(t.snapshot) > d.xid8
                  order by t.tick_id limit 1) as since
  from (select distinct xid8 from waits) d)
select w.kind, w.name, w.pid, w.xid, extract(epoch from now() - s.xact_start)::float8, s.state,
       s.application_name, s.query,
       greatest(0, coalesce(extract(epoch from now() - f.since), 0))::float8
from waits w
join first_seen f on f.xid8 = w.xid8
left join pg_stat_activity s on s.pid = w.pid
order by w.kind, w.name, s.xact_start nulls last, w.xid
)sql";

constexpr std::size_t kQueryStart = 120;  // characters of a blocker's statement reported

// The start of a statement: secrets redacted first (a cut could hide half a URL from the
// redaction), then at most kQueryStart characters, never splitting a UTF-8 sequence.
std::string query_start(std::string_view query) {
  std::string out = redact_secrets(query);
  std::size_t chars = 0, i = 0;
  while (i < out.size()) {
    if ((static_cast<unsigned char>(out[i]) & 0xC0) != 0x80 && chars++ == kQueryStart) break;
    ++i;
  }
  if (i < out.size()) out.resize(i);
  return out;
}

FeedBlocker blocker_from(const pqxx::row& r, std::size_t first) {
  const auto f = [&](std::size_t i) { return r[static_cast<pqxx::row::size_type>(first + i)]; };
  FeedBlocker b;
  if (!f(0).is_null()) b.pid = f(0).as<int>();
  b.xid = f(1).as<std::int64_t>();
  if (!f(2).is_null()) b.age_seconds = f(2).as<double>();
  if (!f(3).is_null()) b.state = f(3).as<std::string>();
  if (!f(4).is_null()) b.application_name = f(4).as<std::string>();
  if (!f(5).is_null()) b.query = query_start(std::string_view(f(5).c_str(), f(5).size()));
  b.blocked_seconds = f(6).as<double>();
  return b;
}

void require_name(const std::string& name) {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a projection name must not be empty");
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
  if (b.pid) o["pid"] = *b.pid;
  o["xid"] = b.xid;
  if (b.age_seconds) o["age_seconds"] = *b.age_seconds;
  if (b.state) o["state"] = *b.state;
  if (b.application_name) o["application_name"] = *b.application_name;
  if (b.query) o["query"] = *b.query;
  o["blocked_seconds"] = b.blocked_seconds;
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
    for (const auto& r : rows) out.push_back(blocker_from(r, 2));
    return out;
  });
}

std::vector<BlockedConsumer> Projections::blocked_consumers() const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    const char* any = nullptr;  // no kind or name filter
    const auto rows =
        db::exec(txn, conn, state_->sql(kBlockers), any, any, state_->quoted_schema + ".events");
    std::vector<BlockedConsumer> out;
    out.reserve(rows.size());
    for (const pqxx::row& r : rows) {
      out.push_back({r[0].c_str(), r[1].c_str(), blocker_from(r, 2)});
    }
    return out;
  });
}

}  // namespace rillflow
