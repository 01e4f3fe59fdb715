#include "runtime/feed_reader.hpp"
#include "db/sql.hpp"

#include <rillflow/error.hpp>

#include <algorithm>
#include <charconv>

namespace rillflow::runtime {

namespace {

// News since the newest tick: an event committed whose transaction was in progress then (in
// xip) or started after it (>= xmax). Both halves walk events_tx_id_idx (max() reads its last
// entry; = any() looks up the few xip ids), so the probe costs the same on any table size. Never
// a range from xmin: an old open transaction must not make this scan long.
constexpr const char* kNews = R"sql(
coalesce((select max(e.tx_id) from {schema}.events e) >= pg_snapshot_xmax(t.snapshot), false)
or exists (select 1 from {schema}.events e
           where e.tx_id = any(array(select pg_snapshot_xip(t.snapshot))))
)sql";

// Under the ticks table lock, so tick N's snapshot is taken after tick N-1 committed and
// snapshots only grow with tick ids. pg_current_snapshot() is this statement's own snapshot, so
// first_seq, the lowest global_seq of batch (N-1, N), is read in exactly the snapshot the tick
// stores: what this statement sees beyond tick N-1 (at or after its xmax, or in its xip), found
// through events_tx_id_idx (materialized, so no plan walks events_pkey for the min instead).
constexpr const char* kInsertTick = R"sql(
with t as (select tick_id, snapshot from {schema}.ticks order by tick_id desc limit 1),
b as materialized (
  select e.global_seq from {schema}.events e
  where e.tx_id >= (select pg_snapshot_xmax(snapshot) from t)
    and e.tx_id < pg_snapshot_xmax(pg_current_snapshot())
  union all
  select e.global_seq from {schema}.events e
  where e.tx_id = any(array(select pg_snapshot_xip(snapshot) from t)))
insert into {schema}.ticks (tick_id, snapshot, first_seq)
select t.tick_id + 1, pg_current_snapshot(), (select min(b.global_seq) from b)
from t
where )sql";

// Ticks from..to: how many exist, how many after `from` know their batch's first_seq, and the
// lowest of those. Tick ids are dense (each is the newest + 1, under the table lock), so the count
// tells whether all of from..to exist: pruning may leave holes (it goes by created_at too), and a
// range with one falls back to the scan from the start.
constexpr const char* kRangeSummary = R"sql(
select count(*), count(first_seq) filter (where tick_id > $1),
       min(first_seq) filter (where tick_id > $1)
from {schema}.ticks where tick_id between $1 and $2
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

}  // namespace

std::string envelope_columns(std::string_view alias, std::string_view created_at) {
  const std::string a(alias);
  // In text format, as the types print (a uuid or jsonb column prints as its ::text would,
  // without the cast's copy); created_at as float8 epoch: exact to the microsecond.
  return a + ".global_seq, " + a + ".stream_id, " + a + ".stream_seq, " + a + ".event_type, " + a +
         ".body, " + a + ".headers, " + a + ".causation_id, " + a + ".correlation_id, " +
         "(date_part('epoch', " + a + "." + std::string(created_at) + ") * 1000000)::bigint";
}

EventEnvelope envelope_from_row(const pqxx::row& row, std::size_t first) {
  // One field iterator walks the columns: each pqxx::field made from row[i] copies the
  // result's shared pointer, which showed as the largest cost of decoding a page.
  auto f = row.begin() + static_cast<pqxx::row::difference_type>(first);
  const auto text = [&f] { return std::string_view(f->c_str(), f->size()); };
  // std::from_chars on the text: libpqxx's own conversion showed in the profile.
  const auto int64 = [&]() -> std::int64_t {
    const auto t = text();
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size()) {
      throw Error(ErrorCode::kInternal, "not a bigint in an event row: '" + std::string(t) + "'");
    }
    return v;
  };
  const auto optional_uuid = [&]() -> std::optional<Uuid> {
    if (f->is_null()) return std::nullopt;
    return parse_uuid(text());
  };
  EventEnvelope env;
  env.global_seq = int64();
  ++f;
  env.stream_id = parse_uuid(text());
  ++f;
  env.stream_seq = int64();
  ++f;
  env.type = text();
  ++f;
  env.body = boost::json::parse(text());
  ++f;
  const auto headers = text();
  env.headers = headers == "{}" ? Json(boost::json::object()) : boost::json::parse(headers);
  ++f;
  env.causation_id = optional_uuid();
  ++f;
  env.correlation_id = optional_uuid();
  ++f;
  env.created_at = std::chrono::system_clock::time_point(std::chrono::microseconds(int64()));
  return env;
}

std::vector<EventEnvelope> envelopes_from(const pqxx::result& result) {
  std::vector<EventEnvelope> out;
  out.reserve(result.size());
  for (const auto& row : result) out.push_back(envelope_from_row(row));
  return out;
}

Ticker::Ticker(const detail::StoreState& state)
    : state_(state),
      probe_sql_(state.sql(std::string("select t.tick_id, ") + kNews +
                           " from (select tick_id, snapshot from {schema}.ticks"
                           " order by tick_id desc limit 1) t")),
      insert_sql_(state.sql(std::string(kInsertTick) + kNews + " returning tick_id")),
      newest_sql_(state.sql("select max(tick_id) from {schema}.ticks")) {}

std::int64_t Ticker::tick(pqxx::transaction_base& txn, db::Connection& conn) const {
  const auto r = db::exec(txn, conn, probe_sql_);
  if (r.empty()) {
    throw Error(ErrorCode::kSchema, "the ticks table of schema '" + state_.options.schema +
                                        "' is empty; run rillflow schema-sync");
  }
  if (!r[0][1].as<bool>()) return r[0][0].as<std::int64_t>();
  // Read committed whatever the session's default, so the insert's snapshot is taken after the
  // lock is granted.
  try {
    txn.exec(state_.sql(
        "begin isolation level read committed; lock table {schema}.ticks in exclusive mode"));
    auto ins = db::exec(txn, conn, insert_sql_);
    if (ins.empty()) ins = db::exec(txn, conn, newest_sql_);
    txn.exec("commit");
    return ins[0][0].as<std::int64_t>();
  } catch (...) {
    try {
      txn.exec("rollback");
    } catch (...) {
    }
    throw;
  }
}

std::int64_t Ticker::newest(pqxx::transaction_base& txn, db::Connection& conn) const {
  const auto r = db::exec(txn, conn, newest_sql_);
  if (r.empty() || r[0][0].is_null()) {
    throw Error(ErrorCode::kSchema, "the ticks table of schema '" + state_.options.schema +
                                        "' is empty; run rillflow schema-sync");
  }
  return r[0][0].as<std::int64_t>();
}

FeedBatch read_batch(pqxx::transaction_base& txn, db::Connection& conn,
                     const detail::StoreState& state, FeedPosition position, std::size_t limit,
                     const std::function<std::int64_t()>& newest_tick) {
  if (limit == 0) throw Error(ErrorCode::kInvalidArgument, "read_feed needs a limit of at least 1");
  if (position.from_tick < 0 || position.after_seq < 0 ||
      (position.to_tick != 0 && position.to_tick <= position.from_tick)) {
    throw Error(ErrorCode::kInvalidArgument, "invalid feed position");
  }
  const std::string batch_sql = state.sql("select " + envelope_columns("e") + kBatchTail);
  const std::string summary_sql = state.sql(kRangeSummary);
  FeedBatch out;
  out.events.reserve(std::min<std::size_t>(limit, 10000));
  out.positions.reserve(out.events.capacity());
  FeedPosition pos = position;
  while (out.events.size() < limit) {
    if (pos.to_tick == 0) {
      const auto latest = newest_tick();
      if (latest <= pos.from_tick) {
        out.caught_up = true;
        break;
      }
      pos.to_tick = latest;
      pos.after_seq = 0;
    }
    if (pos.after_seq == 0) {
      // A batch's first page starts at its lowest global_seq when every tick of the range knows
      // it: the index scan then never walks the events before the batch, so a live reader's
      // cost does not grow with the table.
      const auto r = db::exec(txn, conn, summary_sql, pos.from_tick, pos.to_tick)[0];
      if (r[0].as<std::int64_t>() == pos.to_tick - pos.from_tick + 1 &&
          r[1].as<std::int64_t>() == pos.to_tick - pos.from_tick) {
        pos.after_seq = std::max<std::int64_t>(r[2].as<std::int64_t>() - 1, 0);
      }
    }
    const auto wanted = static_cast<std::int64_t>(limit - out.events.size());
    const auto rows =
        db::exec(txn, conn, batch_sql, pos.from_tick, pos.to_tick, pos.after_seq, wanted);
    for (const auto& row : rows) {
      out.events.push_back(envelope_from_row(row));
      out.positions.push_back({pos.from_tick, pos.to_tick, out.events.back().global_seq});
    }
    if (static_cast<std::int64_t>(rows.size()) == wanted) {
      pos.after_seq = out.events.back().global_seq;
      break;
    }
    if (rows.empty()) {
      const auto known = txn.exec_params(
          state.sql("select count(*) from {schema}.ticks where tick_id in ($1, $2)"), pos.from_tick,
          pos.to_tick);
      if (known[0][0].as<int>() != 2) {
        throw Error(ErrorCode::kInvalidArgument,
                    "feed position refers to tick " + std::to_string(pos.from_tick) + " or " +
                        std::to_string(pos.to_tick) + ", which does not exist in schema '" +
                        state.options.schema + "'");
      }
    }
    pos = FeedPosition{pos.to_tick, 0, 0};  // the batch is done
  }
  out.next = pos;
  return out;
}

}  // namespace rillflow::runtime
