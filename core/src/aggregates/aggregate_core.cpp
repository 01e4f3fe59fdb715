#include <rillflow/aggregates/detail/aggregate_core.hpp>
#include <rillflow/error.hpp>

#include "aggregates/aggregate_sql.hpp"
#include "db/sql.hpp"
#include "events/event_sql.hpp"

namespace rillflow {
namespace aggregates {

namespace {

constexpr const char* kReadSnapshot =
    "select body::text, version from {schema}.snapshots where stream_id = $1::uuid";
// The streams row first (an append's lock order), then the snapshot; the update's row feeds the
// insert, so both happen or neither (no stream row: nothing to snapshot).
constexpr const char* kWriteSnapshot =
    "with s as (update {schema}.streams set snapshot_version = greatest(snapshot_version, $2) "
    "where stream_id = $1::uuid returning stream_id) "
    "insert into {schema}.snapshots as n (stream_id, version, body) "
    "select stream_id, $2, $3::jsonb from s on conflict (stream_id) do update set "
    "version = excluded.version, body = excluded.body, created_at = now() "
    "where n.version < excluded.version returning 1";

struct Snapshot {
  Json body;
  std::int64_t version = 0;
};

std::optional<Snapshot> read_snapshot(pqxx::transaction_base& txn, db::Connection& conn,
                                      const detail::StoreState& state, const Uuid& id) {
  const auto r = db::exec(txn, conn, state.sql(kReadSnapshot), to_string(id));
  if (r.empty()) return std::nullopt;
  return Snapshot{boost::json::parse(std::string_view(r[0][0].c_str(), r[0][0].size())),
                  r[0][1].as<std::int64_t>()};
}

AppendOptions with_defaults(AppendOptions options, const AppendOptions& defaults) {
  if (!options.headers) options.headers = defaults.headers;
  if (!options.causation_id) options.causation_id = defaults.causation_id;
  if (!options.correlation_id) options.correlation_id = defaults.correlation_id;
  return options;
}

}  // namespace

AppendResult commit_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const aggregates_detail::CommitRequest& request,
                       const AppendOptions& defaults, bool advisory_lock, bool notify) {
  const auto result =
      events::append_in(txn, conn, state, request.stream_id, request.expected, request.events,
                        with_defaults(request.options, defaults), advisory_lock, notify);
  if (!request.fold || result.replayed) return result;

  std::optional<Snapshot> snapshot;
  if (request.snapshots_readable) snapshot = read_snapshot(txn, conn, state, request.stream_id);
  const std::int64_t from = snapshot ? snapshot->version : 0;
  const auto tail =
      events::read_stream_in(txn, conn, state, request.stream_id, from + 1, std::nullopt);
  const bool due =
      request.snapshot_every > 0 && result.last_version - from >= request.snapshot_every;
  const Json body = request.fold(snapshot ? &snapshot->body : nullptr, tail, due);
  if (due) {
    if (!body.is_object() && !body.is_array()) {
      throw Error(ErrorCode::kInternal, "aggregate snapshot state did not serialize");
    }
    write_snapshot(txn, conn, state, request.stream_id, result.last_version,
                   boost::json::serialize(body));
  }
  return result;
}

bool write_snapshot(pqxx::transaction_base& txn, db::Connection& conn,
                    const detail::StoreState& state, const Uuid& stream_id, std::int64_t version,
                    const std::string& body) {
  return !db::exec(txn, conn, state.sql(kWriteSnapshot), to_string(stream_id), version, body)
              .empty();
}

}  // namespace aggregates

namespace aggregates_detail {

void throw_rejected(const Uuid& stream_id, const std::string& reason) {
  throw Error(ErrorCode::kInvalidArgument,
              "aggregate " + to_string(stream_id) + " rejected the new events: " + reason);
}

AppendResult AggregateCore::commit(const CommitRequest& request) const {
  const detail::AppendNotice notice(*state_);
  const auto result =
      db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
        return aggregates::commit_in(txn, conn, *state_, request, AppendOptions{}, false,
                                     notice.in_transaction());
      });
  if (!result.replayed) notice.committed();
  return result;
}

std::vector<EventEnvelope> AggregateCore::read_all(const Uuid& stream_id) const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return events::read_stream_in(txn, conn, *state_, stream_id, 1, std::nullopt);
  });
}

SnapshotAndTail AggregateCore::read_snapshot_and_tail(const Uuid& stream_id) const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    SnapshotAndTail out;
    if (auto snap = aggregates::read_snapshot(txn, conn, *state_, stream_id)) {
      out.body = std::move(snap->body);
      out.version = snap->version;
    }
    // A newer snapshot written between the two reads is harmless: the events after the older
    // one are all still there.
    out.tail = events::read_stream_in(txn, conn, *state_, stream_id, out.version + 1, std::nullopt);
    return out;
  });
}

std::optional<std::int64_t> AggregateCore::snapshot_version(const Uuid& stream_id) const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    std::optional<std::int64_t> v;
    if (auto snap = aggregates::read_snapshot(txn, conn, *state_, stream_id)) v = snap->version;
    return v;
  });
}

}  // namespace aggregates_detail
}  // namespace rillflow
