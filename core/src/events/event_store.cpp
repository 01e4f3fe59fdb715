#include <rillflow/error.hpp>
#include <rillflow/events/event_store.hpp>
#include <rillflow/events/notify.hpp>

#include "db/sql.hpp"
#include "events/event_sql.hpp"

namespace rillflow {
namespace events {

namespace {

std::optional<std::string> optional_text(const std::optional<Uuid>& id) {
  if (!id) return std::nullopt;
  return to_string(*id);
}

// One jsonb parameter carries the whole batch: [[type, body], ...].
std::string events_json(const std::vector<Event>& events) {
  std::string out = "[";
  for (const auto& e : events) {
    if (e.type.empty()) throw Error(ErrorCode::kInvalidArgument, "an event type must not be empty");
    if (out.size() > 1) out += ',';
    out += '[';
    out += boost::json::serialize(boost::json::string_view(e.type));
    out += ',';
    out += boost::json::serialize(e.body);
    out += ']';
  }
  out += ']';
  return out;
}

// The stream row is locked (upsert) before sequence numbers are drawn, and the expectation is
// checked against the locked version, all in one round trip. When the expectation fails no
// event is inserted and the caller rolls back.
constexpr const char* kAppendSql = R"sql(
with s as (
  insert into {schema}.streams as s (stream_id, version) values ($1::uuid, $2::bigint)
  on conflict (stream_id) do update set version = s.version + excluded.version, updated_at = now()
  returning s.version - $2::bigint as prev
), ok as (
  select prev from s
  where case $3::int when 1 then prev = 0 when 2 then prev > 0 when 3 then prev = $4::bigint
                     else true end
), ins as (
  insert into {schema}.events
    (stream_id, stream_seq, event_type, body, headers, causation_id, correlation_id)
  select $1::uuid, ok.prev + x.ord, x.e->>0, x.e->1, $5::jsonb, $6::uuid, $7::uuid
  from ok, jsonb_array_elements($8::jsonb) with ordinality as x(e, ord)
  order by x.ord
  returning global_seq
)
select (select prev from s), count(*), coalesce(min(global_seq), 0), coalesce(max(global_seq), 0)
)sql";
// The same, plus one NOTIFY for the transaction (identical payloads collapse at commit).
constexpr const char* kNotifySuffix = ", pg_notify($9, $10) is null from ins";

}  // namespace

std::vector<EventEnvelope> read_stream_in(pqxx::transaction_base& txn, db::Connection& conn,
                                          const detail::StoreState& state, const Uuid& stream_id,
                                          std::int64_t from_version,
                                          std::optional<std::int64_t> limit) {
  const std::string sql = state.sql("select " + runtime::envelope_columns("e") +
                                    " from {schema}.events e where e.stream_id = $1::uuid and "
                                    "e.stream_seq >= $2 order by e.stream_seq limit $3");
  return envelopes_from(db::exec(txn, conn, sql, to_string(stream_id), from_version, limit));
}

AppendResult append_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const Uuid& stream_id, const Expected& expected,
                       const std::vector<Event>& events, const AppendOptions& options,
                       bool advisory_lock, bool notify) {
  if (events.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "an append needs at least one event");
  }
  if (options.headers && !options.headers->is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "append headers must be a JSON object");
  }
  const std::string id = to_string(stream_id);
  const std::string batch = events_json(events);
  const std::string headers =
      options.headers ? boost::json::serialize(*options.headers) : std::string("{}");
  const auto causation = optional_text(options.causation_id);
  const auto correlation = optional_text(options.correlation_id);

  if (advisory_lock) {
    db::exec(txn, conn, "select pg_advisory_xact_lock(hashtextextended($1, 7))", id);
  }

  std::string request;
  if (options.idempotency_key) {
    if (options.idempotency_key->empty()) {
      throw Error(ErrorCode::kInvalidArgument, "an idempotency key must not be empty");
    }
    boost::json::object req;
    req["events"] = boost::json::parse(batch);
    req["headers"] = boost::json::parse(headers);
    req["causation_id"] = causation ? Json(*causation) : Json(nullptr);
    req["correlation_id"] = correlation ? Json(*correlation) : Json(nullptr);
    request = boost::json::serialize(req);
    // Waits for a concurrent holder of the same key, then sees its outcome.
    const auto claimed =
        db::exec(txn, conn,
                 state.sql("insert into {schema}.idempotency_keys (stream_id, key, request) "
                           "values ($1::uuid, $2, $3::jsonb) on conflict do nothing "
                           "returning 1"),
                 id, *options.idempotency_key, request);
    if (claimed.empty()) {
      const auto prior = db::exec(
          txn, conn,
          state.sql("select request = $3::jsonb, first_version, last_version, first_global_seq, "
                    "last_global_seq from {schema}.idempotency_keys where stream_id = $1::uuid and "
                    "key = $2"),
          id, *options.idempotency_key, request);
      if (prior.empty() || !prior[0][0].as<bool>()) {
        throw IdempotencyConflict(id, *options.idempotency_key);
      }
      AppendResult r;
      r.stream_id = stream_id;
      r.first_version = prior[0][1].as<std::int64_t>();
      r.last_version = prior[0][2].as<std::int64_t>();
      r.first_global_seq = prior[0][3].as<std::int64_t>();
      r.last_global_seq = prior[0][4].as<std::int64_t>();
      r.replayed = true;
      return r;
    }
  }

  const auto kind = static_cast<int>(expected.kind());
  const auto n = static_cast<std::int64_t>(events.size());
  pqxx::result res;
  if (notify) {
    res = db::exec(txn, conn, state.sql(kAppendSql) + kNotifySuffix, id, n, kind,
                   expected.version(), headers, causation, correlation, batch,
                   state.options.notify_channel, notify::payload_for(state.options.schema));
  } else {
    res = db::exec(txn, conn, state.sql(kAppendSql) + " from ins", id, n, kind, expected.version(),
                   headers, causation, correlation, batch);
  }
  const auto prev = res[0][0].as<std::int64_t>();
  if (res[0][1].as<std::int64_t>() != n) {
    throw VersionConflict(id, expected.to_string(), prev);
  }
  AppendResult r;
  r.stream_id = stream_id;
  r.first_version = prev + 1;
  r.last_version = prev + n;
  r.first_global_seq = res[0][2].as<std::int64_t>();
  r.last_global_seq = res[0][3].as<std::int64_t>();

  if (options.idempotency_key) {
    db::exec(
        txn, conn,
        state.sql(
            "update {schema}.idempotency_keys set first_version = $3, last_version = $4, "
            "first_global_seq = $5, last_global_seq = $6 where stream_id = $1::uuid and key = $2"),
        id, *options.idempotency_key, r.first_version, r.last_version, r.first_global_seq,
        r.last_global_seq);
  }
  return r;
}

}  // namespace events

EventStore::EventStore(std::shared_ptr<const detail::StoreState> state, bool advisory_locks)
    : state_(std::move(state)), advisory_locks_(advisory_locks) {}

EventStore EventStore::with_advisory_locks() const {
  return EventStore(state_, true);
}

AppendResult EventStore::append_stream(const Uuid& stream_id, Expected expected,
                                       std::vector<Event> events) const {
  return append_with(stream_id, expected, std::move(events), AppendOptions{});
}

AppendResult EventStore::append_with(const Uuid& stream_id, Expected expected,
                                     std::vector<Event> events,
                                     const AppendOptions& options) const {
  const detail::AppendNotice notice(*state_);
  const auto result =
      db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
        return events::append_in(txn, conn, *state_, stream_id, expected, events, options,
                                 advisory_locks_, notice.in_transaction());
      });
  if (!result.replayed) notice.committed();
  return result;
}

std::vector<EventEnvelope> EventStore::read_stream(const Uuid& stream_id, StreamRead range) const {
  std::optional<std::int64_t> limit;
  if (range.limit) limit = static_cast<std::int64_t>(*range.limit);
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return events::read_stream_in(txn, conn, *state_, stream_id, range.from_version, limit);
  });
}

std::optional<std::int64_t> EventStore::stream_version(const Uuid& stream_id) const {
  const std::string sql =
      state_->sql("select version from {schema}.streams where stream_id = $1::uuid");
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    const auto r = db::exec(txn, conn, sql, to_string(stream_id));
    std::optional<std::int64_t> v;
    if (!r.empty() && r[0][0].template as<std::int64_t>() > 0)
      v = r[0][0].template as<std::int64_t>();
    return v;
  });
}

std::int64_t EventStore::head() const {
  const std::string sql = state_->sql("select coalesce(max(global_seq), 0) from {schema}.events");
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return db::exec(txn, conn, sql)[0][0].template as<std::int64_t>();
  });
}

}  // namespace rillflow
