// ProjectionDaemon's operator calls: status, pause / resume, checkpoint reset, rebuild, the DLQ
// (parking) and metrics. Unknown names are errors and write nothing.

#include "projections/projection_runtime.hpp"

#include "db/sql.hpp"
#include "projections/transaction_access.hpp"

#include <algorithm>

namespace rillflow {

namespace {

using Clock = std::chrono::system_clock;

constexpr const char* kStatusColumns =
    "name, from_tick, to_tick, after_seq, last_global_seq, paused, stopped, lease_owner, "
    "(extract(epoch from lease_expires_at) * 1000000)::bigint, lease_epoch, attempts, "
    "(extract(epoch from backoff_until) * 1000000)::bigint, last_error, "
    "(extract(epoch from updated_at) * 1000000)::bigint";

std::optional<Clock::time_point> optional_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return runtime::from_micros(f.as<std::int64_t>());
}

std::optional<std::string> optional_string(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

ProjectionStatus status_from_row(const pqxx::row& r) {
  ProjectionStatus s;
  s.name = r[0].as<std::string>();
  s.position = {r[1].as<std::int64_t>(), r[2].as<std::int64_t>(), r[3].as<std::int64_t>()};
  s.last_global_seq = r[4].as<std::int64_t>();
  s.paused = r[5].as<bool>();
  s.stopped = r[6].as<bool>();
  s.lease_owner = optional_string(r[7]);
  s.lease_expires_at = optional_time(r[8]);
  s.lease_epoch = r[9].as<std::int64_t>();
  s.attempts = r[10].as<int>();
  s.backoff_until = optional_time(r[11]);
  s.last_error = optional_string(r[12]);
  s.updated_at = runtime::from_micros(r[13].as<std::int64_t>());
  return s;
}

runtime::UnitKey key_of(const std::string& name) {
  return {kProjectionKind, name};
}

}  // namespace

void ProjectionDaemon::Impl::require_known(const std::string& name) const {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a projection name must not be empty");
  if (find(name)) return;
  const bool stored = db::without_transaction(pool(), [&](auto& txn, db::Connection& conn) {
    return !db::exec(txn, conn,
                     sql("select 1 from {schema}.work_units where kind = "
                         "$1 and name = $2"),
                     kProjectionKind, name)
                .empty();
  });
  if (!stored) throw NotFound("projection", name);
}

std::int64_t ProjectionDaemon::Impl::remaining(const std::string& name) const {
  return db::without_transaction(pool(), [&](auto& txn, db::Connection& conn) {
    return db::exec(
               txn, conn,
               sql("select count(*) from {schema}.events e where e.global_seq > coalesce((select "
                   "last_global_seq from {schema}.work_units where kind = $1 and name = $2), 0)"),
               kProjectionKind, name)[0][0]
        .template as<std::int64_t>();
  });
}

Json to_json(const ProjectionStatus& s) {
  auto text = [](const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); };
  auto time = [](const std::optional<Clock::time_point>& t) {
    return t ? Json(format_timestamp(*t)) : Json(nullptr);
  };
  return boost::json::object{{"name", s.name},
                             {"position", boost::json::object{{"from_tick", s.position.from_tick},
                                                              {"to_tick", s.position.to_tick},
                                                              {"after_seq", s.position.after_seq}}},
                             {"last_global_seq", s.last_global_seq},
                             {"paused", s.paused},
                             {"stopped", s.stopped},
                             {"lease_owner", text(s.lease_owner)},
                             {"lease_expires_at", time(s.lease_expires_at)},
                             {"lease_epoch", s.lease_epoch},
                             {"attempts", s.attempts},
                             {"backoff_until", time(s.backoff_until)},
                             {"last_error", text(s.last_error)},
                             {"updated_at", format_timestamp(s.updated_at)}};
}

Json to_json(const ProjectionMetrics& m) {
  return boost::json::object{{"name", m.name},
                             {"position", m.position},
                             {"head", m.head},
                             {"lag_events", m.lag_events},
                             {"lag_seconds", m.lag_seconds},
                             {"dlq_count", m.dlq_count},
                             {"dlq_oldest_age_seconds", m.dlq_oldest_age_seconds}};
}

std::vector<ProjectionStatus> ProjectionDaemon::list() const {
  return db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    std::vector<ProjectionStatus> out;
    for (const auto& row :
         db::exec(txn, conn,
                  impl_->sql(std::string("select ") + kStatusColumns +
                             " from {schema}.work_units where kind = $1 order by name"),
                  kProjectionKind)) {
      out.push_back(status_from_row(row));
    }
    return out;
  });
}

std::optional<ProjectionStatus> ProjectionDaemon::status(const std::string& name) const {
  return db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    const auto r = db::exec(txn, conn,
                            impl_->sql(std::string("select ") + kStatusColumns +
                                       " from {schema}.work_units where kind = $1 and name = $2"),
                            kProjectionKind, name);
    std::optional<ProjectionStatus> out;
    if (!r.empty()) out = status_from_row(r[0]);
    return out;
  });
}

namespace {

void set_flags(ProjectionDaemon::Impl& impl, const std::string& name, const char* set_clause) {
  impl.require_known(name);
  db::without_transaction(impl.pool(), [&](auto& txn, db::Connection& conn) {
    impl.leases.ensure(txn, conn, key_of(name));
    db::exec(txn, conn,
             impl.sql(std::string("update {schema}.work_units set ") + set_clause +
                      ", updated_at = now() where kind = $1 and name = $2"),
             kProjectionKind, name);
  });
}

}  // namespace

void ProjectionDaemon::pause(const std::string& name) {
  set_flags(*impl_, name, "paused = true");
}

void ProjectionDaemon::resume(const std::string& name) {
  set_flags(*impl_, name, "paused = false, stopped = false, backoff_until = null, attempts = 0");
}

void ProjectionDaemon::reset_checkpoint(const std::string& name, std::int64_t after_global_seq) {
  if (after_global_seq < 0)
    throw Error(ErrorCode::kInvalidArgument, "a checkpoint cannot be negative");
  impl_->require_known(name);
  const auto head = impl_->store.events().head();
  if (after_global_seq > head) {
    throw Error(ErrorCode::kInvalidArgument, "checkpoint " + std::to_string(after_global_seq) +
                                                 " lies beyond the head of the "
                                                 "feed (global_seq " +
                                                 std::to_string(head) + ")");
  }
  // Every event visible now with a larger global_seq lies in the batch from tick 0 to the
  // newest tick; events committing later arrive in later batches as usual.
  FeedPosition position;
  if (after_global_seq > 0) {
    const auto end = impl_->store.events().feed_end();
    if (end.from_tick > 0) position = {0, end.from_tick, after_global_seq};
  }
  db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    impl_->leases.ensure(txn, conn, key_of(name));
    impl_->runner.checkpoints().reset(txn, conn, key_of(name), position, position.after_seq);
  });
}

void ProjectionDaemon::rebuild(const std::string& name) {
  auto& p = impl_->registered(name);
  std::lock_guard guard(p.mutex);
  const auto lease = db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    impl_->leases.ensure(txn, conn, p.key);
    p.memo.row_known = true;
    return impl_->leases.acquire_or_throw(txn, conn, p.key);
  });
  p.memo.epoch = lease.epoch;
  db::with_connection(impl_->pool(), [&](db::Connection& conn) {
    projections::ExplicitTransaction tx(
        conn, "begin; set local search_path to " + impl_->state->quoted_schema + ", public");
    auto& txn = *tx;
    impl_->leases.fence(txn, conn, p.key, lease.epoch);
    auto t = projections::wrap(txn, conn, impl_->state->options.schema);
    p.handler->prepare(t);
    p.handler->reset(t);
    impl_->runner.parking().clear(txn, conn, p.key);
    impl_->runner.checkpoints().reset(txn, conn, p.key, FeedPosition{}, 0);
    tx.commit();
  });
}

std::vector<DlqEntry> ProjectionDaemon::dlq_list(const std::string& name, std::size_t limit) const {
  impl_->require_known(name);
  return db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    return impl_->runner.parking().list(txn, conn, key_of(name), limit);
  });
}

bool ProjectionDaemon::dlq_requeue(const std::string& name, std::int64_t id) {
  impl_->require_known(name);
  return db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    return impl_->runner.parking().requeue(txn, conn, key_of(name), id);
  });
}

bool ProjectionDaemon::dlq_delete(const std::string& name, std::int64_t id) {
  impl_->require_known(name);
  return db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    return impl_->runner.parking().remove(txn, conn, key_of(name), id);
  });
}

ProjectionMetrics ProjectionDaemon::metrics(const std::string& name) const {
  impl_->require_known(name);
  return db::without_transaction(impl_->pool(), [&](auto& txn, db::Connection& conn) {
    const auto r = db::exec(txn, conn, impl_->sql(R"sql(
select coalesce(u.last_global_seq, 0),
       (select coalesce(max(global_seq), 0) from {schema}.events),
       extract(epoch from now() - (select e.created_at from {schema}.events e
                                   where e.global_seq > coalesce(u.last_global_seq, 0)
                                   order by e.global_seq limit 1)),
       (select count(*) from {schema}.parked d where d.kind = $1 and d.name = $2),
       extract(epoch from now() - (select min(d.failed_at) from {schema}.parked d
                                   where d.kind = $1 and d.name = $2))
from (select 1) one left join {schema}.work_units u on u.kind = $1 and u.name = $2
)sql"),
                            kProjectionKind, name);
    ProjectionMetrics m;
    m.name = name;
    m.position = r[0][0].template as<std::int64_t>();
    m.head = r[0][1].template as<std::int64_t>();
    m.lag_events = std::max<std::int64_t>(0, m.head - m.position);
    m.lag_seconds = r[0][2].is_null() ? 0.0 : std::max(0.0, r[0][2].template as<double>());
    m.dlq_count = r[0][3].template as<std::int64_t>();
    m.dlq_oldest_age_seconds = r[0][4].is_null() ? 0.0 : r[0][4].template as<double>();
    return m;
  });
}

}  // namespace rillflow
