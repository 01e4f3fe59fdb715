// The global feed: batches between snapshot ticks, so no committed event is ever skipped
// (docs/ordering.md explains why and how).

#include <rillflow/error.hpp>
#include <rillflow/events/event_store.hpp>

#include "db/sql.hpp"
#include "events/event_sql.hpp"

#include <algorithm>

namespace rillflow {

namespace {

// Rows committed since a snapshot: those whose transaction was in progress then (in xip) or
// started after it (>= xmax). Never a range from xmin: an old open transaction must not make
// this scan long.
constexpr const char* kNewsSinceLatestTick = R"sql(
select t.tick_id, exists (
  select 1 from {schema}.events e
  where e.tx_id >= pg_snapshot_xmax(t.snapshot)
     or e.tx_id = any(array(select pg_snapshot_xip(t.snapshot))))
from (select tick_id, snapshot from {schema}.ticks order by tick_id desc limit 1) t
)sql";

// Under the ticks table lock, so tick N's snapshot is taken after tick N-1 committed and
// snapshots only grow with tick ids.
constexpr const char* kInsertTick = R"sql(
insert into {schema}.ticks (tick_id, snapshot)
select t.tick_id + 1, pg_current_snapshot()
from (select tick_id, snapshot from {schema}.ticks order by tick_id desc limit 1) t
where exists (
  select 1 from {schema}.events e
  where e.tx_id >= pg_snapshot_xmax(t.snapshot)
     or e.tx_id = any(array(select pg_snapshot_xip(t.snapshot))))
returning tick_id
)sql";

// The batch between two ticks: visible in `to`, not visible in `from`, paged by global_seq.
// Below xmin(to) a transaction is visible without consulting the snapshot's list (the common
// case when catching up), so the cheap comparison goes first.
constexpr const char* kBatchTail = R"sql(
from {schema}.events e
where (e.tx_id >= (select pg_snapshot_xmax(snapshot) from {schema}.ticks where tick_id = $1)
       or e.tx_id = any(array(select pg_snapshot_xip(snapshot)
                              from {schema}.ticks where tick_id = $1)))
  and e.tx_id < (select pg_snapshot_xmax(snapshot) from {schema}.ticks where tick_id = $2)
  and (e.tx_id < (select pg_snapshot_xmin(snapshot) from {schema}.ticks where tick_id = $2)
       or pg_visible_in_snapshot(e.tx_id, (select snapshot from {schema}.ticks where tick_id = $2)))
  and e.global_seq > $3
order by e.global_seq
limit $4
)sql";

// The newest tick id, creating one first when events committed since the newest.
std::int64_t ensure_tick(db::Connection& conn, const detail::StoreState& state) {
  {
    pqxx::nontransaction probe(conn.raw());
    const auto r = db::exec(probe, conn, state.sql(kNewsSinceLatestTick));
    if (r.empty()) {
      throw Error(ErrorCode::kSchema, "the ticks table of schema '" + state.options.schema +
                                          "' is empty; run rillflow schema-sync");
    }
    if (!r[0][1].as<bool>()) return r[0][0].as<std::int64_t>();
  }
  pqxx::work txn(conn.raw());
  txn.exec(state.sql("lock table {schema}.ticks in exclusive mode"));
  auto r = db::exec(txn, conn, state.sql(kInsertTick));
  if (r.empty()) r = txn.exec(state.sql("select max(tick_id) from {schema}.ticks"));
  txn.commit();
  return r[0][0].as<std::int64_t>();
}

}  // namespace

FeedPosition EventStore::feed_end() const {
  return db::with_connection(state_->connections(), [&](db::Connection& conn) {
    return FeedPosition{ensure_tick(conn, *state_), 0, 0};
  });
}

FeedBatch EventStore::read_feed(FeedPosition position, std::size_t limit) const {
  if (limit == 0) throw Error(ErrorCode::kInvalidArgument, "read_feed needs a limit of at least 1");
  if (position.from_tick < 0 || position.after_seq < 0 ||
      (position.to_tick != 0 && position.to_tick <= position.from_tick)) {
    throw Error(ErrorCode::kInvalidArgument, "invalid feed position");
  }
  const std::string batch_sql =
      state_->sql(std::string("select ") + events::kEnvelopeColumns + kBatchTail);
  return db::with_connection(state_->connections(), [&](db::Connection& conn) {
    FeedBatch out;
    out.events.reserve(std::min<std::size_t>(limit, 10000));
    out.positions.reserve(out.events.capacity());
    FeedPosition pos = position;
    while (out.events.size() < limit) {
      if (pos.to_tick == 0) {
        const auto latest = ensure_tick(conn, *state_);
        if (latest <= pos.from_tick) {
          out.caught_up = true;
          break;
        }
        pos.to_tick = latest;
        pos.after_seq = 0;
      }
      const auto wanted = static_cast<std::int64_t>(limit - out.events.size());
      pqxx::nontransaction txn(conn.raw());
      const auto rows =
          db::exec(txn, conn, batch_sql, pos.from_tick, pos.to_tick, pos.after_seq, wanted);
      for (const auto& row : rows) {
        out.events.push_back(events::envelope_from_row(row));
        out.positions.push_back({pos.from_tick, pos.to_tick, out.events.back().global_seq});
      }
      if (static_cast<std::int64_t>(rows.size()) == wanted) {
        pos.after_seq = out.events.back().global_seq;
        break;
      }
      if (rows.empty()) {
        const auto known = txn.exec_params(
            state_->sql("select count(*) from {schema}.ticks where tick_id in ($1, $2)"),
            pos.from_tick, pos.to_tick);
        if (known[0][0].as<int>() != 2) {
          throw Error(ErrorCode::kInvalidArgument,
                      "feed position refers to tick " + std::to_string(pos.from_tick) + " or " +
                          std::to_string(pos.to_tick) + ", which does not exist in schema '" +
                          state_->options.schema + "'");
        }
      }
      pos = FeedPosition{pos.to_tick, 0, 0};  // the batch is done
    }
    out.next = pos;
    return out;
  });
}

}  // namespace rillflow
