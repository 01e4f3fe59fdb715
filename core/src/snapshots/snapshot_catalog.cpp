#include <rillflow/snapshots/snapshot_catalog.hpp>
#include <rillflow/store.hpp>

#include "db/sql.hpp"
#include "snapshots/snapshot_sql.hpp"
#include "store_state.hpp"

namespace rillflow {

namespace {

constexpr const char* kStatus = "select " RILLFLOW_SNAPSHOT_STATUS_COLUMNS
                                " from {schema}.streams s left join {schema}.snapshots n "
                                "on n.stream_id = s.stream_id where s.stream_id = $1::uuid";
constexpr const char* kList = "select " RILLFLOW_SNAPSHOT_STATUS_COLUMNS
                              " from {schema}.streams s left join {schema}.snapshots n "
                              "on n.stream_id = s.stream_id "
                              "where s.version - s.snapshot_version >= $1 "
                              "order by s.version - s.snapshot_version desc, s.stream_id limit $2";

SnapshotStatus status_from(const pqxx::row& r) {
  SnapshotStatus s;
  s.stream_id = parse_uuid(r[0].c_str());
  if (!r[1].is_null()) s.alias = r[1].as<std::string>();
  s.version = r[2].as<std::int64_t>();
  s.snapshot_version = r[3].as<std::int64_t>();
  s.events_since_snapshot = r[4].as<std::int64_t>();
  s.size_bytes = r[5].as<std::int64_t>();
  if (!r[6].is_null()) {
    s.snapshot_at =
        std::chrono::system_clock::time_point(std::chrono::microseconds(r[6].as<std::int64_t>()));
  }
  return s;
}

}  // namespace

SnapshotCatalog::SnapshotCatalog(const Store& store) : state_(store.shared_state()) {}

std::optional<SnapshotStatus> SnapshotCatalog::status(const Uuid& stream_id) const {
  return db::without_transaction(
      state_->connections(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
        const auto r = db::exec(txn, conn, state_->sql(kStatus), to_string(stream_id));
        std::optional<SnapshotStatus> out;
        if (!r.empty() && r[0][2].as<std::int64_t>() > 0) out = status_from(r[0]);
        return out;
      });
}

std::vector<SnapshotStatus> SnapshotCatalog::list(std::size_t limit,
                                                  std::int64_t min_events_since_snapshot) const {
  return db::without_transaction(
      state_->connections(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
        const auto r = db::exec(txn, conn, state_->sql(kList), min_events_since_snapshot,
                                static_cast<std::int64_t>(limit));
        std::vector<SnapshotStatus> out;
        for (const auto& row : r) out.push_back(status_from(row));
        return out;
      });
}

}  // namespace rillflow
