#include "runtime/parking.hpp"
#include "db/sql.hpp"

#include "runtime/feed_reader.hpp"

namespace rillflow::runtime {

namespace {

constexpr const char* kPark = R"sql(
insert into {schema}.parked
  (kind, name, global_seq, stream_id, stream_seq, event_type, body, headers, causation_id,
   correlation_id, event_created_at, error, attempts)
values ($1, $2, $3, $4::uuid, $5, $6, $7::jsonb, $8::jsonb, $9::uuid, $10::uuid,
        to_timestamp($11::double precision / 1000000), $12, $13)
)sql";

// The envelope's columns (the feed reader's list and decoder), then the parking columns.
std::string select_parked() {
  return "select " + envelope_columns("d", "event_created_at") +
         ", d.id, d.name, d.error, d.attempts, (extract(epoch from d.failed_at) * "
         "1000000)::bigint, "
         "d.requeued_at is not null from {schema}.parked d ";
}

ParkedEvent parked_from_row(const pqxx::row& r) {
  ParkedEvent d;
  d.event = envelope_from_row(r, 0);
  const auto c = [&](std::size_t i) {
    return r[static_cast<pqxx::row::size_type>(kEnvelopeColumnCount + i)];
  };
  d.id = c(0).as<std::int64_t>();
  d.projection = c(1).as<std::string>();
  d.error = c(2).as<std::string>();
  d.attempts = c(3).as<int>();
  d.failed_at = from_micros(c(4).as<std::int64_t>());
  d.requeued = c(5).as<bool>();
  return d;
}

std::vector<ParkedEvent> parked_from(const pqxx::result& rows) {
  std::vector<ParkedEvent> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(parked_from_row(row));
  return out;
}

}  // namespace

Parking::Parking(const detail::StoreState& state)
    : park_sql_(state.sql(kPark)),
      requeued_sql_(state.sql(select_parked() +
                              "where d.kind = $1 and d.name = $2 and d.requeued_at is not null "
                              "order by d.id for update")),
      claim_sql_(state.sql("with c as (update {schema}.parked set requeued_at = null where kind = "
                           "$1 and name = $2 and requeued_at is not null returning id) " +
                           select_parked() + "where d.id in (select id from c) order by d.id")),
      delete_sql_(state.sql("delete from {schema}.parked where id = $1")),
      failed_again_sql_(state.sql("update {schema}.parked set requeued_at = null, attempts = "
                                  "attempts + 1, error = $2, failed_at = now() where id = $1")),
      list_sql_(
          state.sql(select_parked() + "where d.kind = $1 and d.name = $2 order by d.id limit $3")),
      requeue_sql_(state.sql("update {schema}.parked set requeued_at = now() "
                             "where kind = $1 and name = $2 and id = $3")),
      remove_sql_(
          state.sql("delete from {schema}.parked where kind = $1 and name = $2 and id = $3")),
      clear_sql_(state.sql("delete from {schema}.parked where kind = $1 and name = $2")),
      transfer_sql_(state.sql("update {schema}.parked set kind = $3, name = $4 "
                              "where kind = $1 and name = $2")) {}

void Parking::park(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                   const EventEnvelope& e, const std::string& error, int attempts) const {
  const auto opt = [](const std::optional<Uuid>& id) {
    return id ? std::optional<std::string>(to_string(*id)) : std::nullopt;
  };
  db::exec(txn, conn, park_sql_, key.kind, key.name, e.global_seq, to_string(e.stream_id),
           e.stream_seq, e.type, boost::json::serialize(e.body), boost::json::serialize(e.headers),
           opt(e.causation_id), opt(e.correlation_id), to_micros(e.created_at), error, attempts);
}

std::vector<ParkedEvent> Parking::take_requeued(pqxx::transaction_base& txn, db::Connection& conn,
                                                const UnitKey& key) const {
  return parked_from(db::exec(txn, conn, requeued_sql_, key.kind, key.name));
}

std::vector<ParkedEvent> Parking::claim_requeued(pqxx::transaction_base& txn, db::Connection& conn,
                                                 const UnitKey& key) const {
  return parked_from(db::exec(txn, conn, claim_sql_, key.kind, key.name));
}

void Parking::settle(pqxx::transaction_base& txn, db::Connection& conn, std::int64_t id,
                     const std::optional<std::string>& error) const {
  if (!error) {
    db::exec(txn, conn, delete_sql_, id);
  } else {
    db::exec(txn, conn, failed_again_sql_, id, *error);
  }
}

std::vector<ParkedEvent> Parking::list(pqxx::transaction_base& txn, db::Connection& conn,
                                       const UnitKey& key, std::size_t limit) const {
  return parked_from(
      db::exec(txn, conn, list_sql_, key.kind, key.name, static_cast<std::int64_t>(limit)));
}

bool Parking::requeue(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                      std::int64_t id) const {
  return db::exec(txn, conn, requeue_sql_, key.kind, key.name, id).affected_rows() == 1;
}

bool Parking::remove(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key,
                     std::int64_t id) const {
  return db::exec(txn, conn, remove_sql_, key.kind, key.name, id).affected_rows() == 1;
}

void Parking::clear(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& key) const {
  db::exec(txn, conn, clear_sql_, key.kind, key.name);
}

void Parking::transfer(pqxx::transaction_base& txn, db::Connection& conn, const UnitKey& from,
                       const UnitKey& to) const {
  clear(txn, conn, to);
  db::exec(txn, conn, transfer_sql_, from.kind, from.name, to.kind, to.name);
}

}  // namespace rillflow::runtime
