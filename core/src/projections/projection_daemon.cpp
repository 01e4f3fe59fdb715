// The projection runtime: leases, batches, checkpoints, retries and the DLQ (docs/projections.md).

#include <rillflow/error.hpp>
#include <rillflow/projections/projection_daemon.hpp>

#include "db/sql.hpp"
#include "events/event_sql.hpp"
#include "projections/transaction_access.hpp"
#include "store_state.hpp"

#include <unistd.h>
#include <algorithm>
#include <mutex>
#include <random>
#include <thread>

namespace rillflow {

std::string_view to_string(TickOutcome outcome) noexcept {
  switch (outcome) {
    case TickOutcome::kIdle:
      return "idle";
    case TickOutcome::kProcessed:
      return "processed";
    case TickOutcome::kPaused:
      return "paused";
    case TickOutcome::kBackoff:
      return "backoff";
    case TickOutcome::kLeasedByOther:
      return "leased_by_other";
    case TickOutcome::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::system_clock;

constexpr const char* kEnsureRow =
    "insert into {schema}.projections (name) values ($1) on conflict (name) do nothing";

// Takes or renews the lease unless another owner's is still valid. A runtime in the middle of
// a batch holds the row lock: SKIP LOCKED makes us back off instead of queueing behind it.
constexpr const char* kAcquire = R"sql(
with c as (select name from {schema}.projections where name = $1 for update skip locked)
update {schema}.projections p set
  lease_epoch = case when p.lease_owner = $2 then p.lease_epoch else p.lease_epoch + 1 end,
  lease_owner = $2,
  lease_expires_at = now() + $3 * interval '1 millisecond'
from c
where p.name = c.name
  and (p.lease_owner is null or p.lease_owner = $2 or p.lease_expires_at < now())
returning p.lease_epoch, p.paused, p.stopped, coalesce(p.backoff_until > now(), false),
          p.from_tick, p.to_tick, p.after_seq, p.attempts,
          exists (select 1 from {schema}.projection_dlq d
                  where d.projection = p.name and d.requeued_at is not null)
)sql";

// Fencing: inside the batch transaction, the row is ours only if owner and epoch still match.
constexpr const char* kFence = R"sql(
select from_tick, to_tick, after_seq, attempts from {schema}.projections
where name = $1 and lease_owner = $2 and lease_epoch = $3 for update
)sql";

// The checkpoint never moves backwards (the guard is redundant with the fence; it documents
// and enforces the rule).
constexpr const char* kCheckpoint = R"sql(
update {schema}.projections set
  from_tick = $4, to_tick = $5, after_seq = $6,
  last_global_seq = greatest(last_global_seq, $7),
  lease_expires_at = now() + $8 * interval '1 millisecond',
  attempts = $9,
  backoff_until = case when $10::bigint > 0 then now() + $10 * interval '1 millisecond' end,
  last_error = $11,
  stopped = stopped or $12,
  updated_at = now()
where name = $1 and lease_owner = $2 and lease_epoch = $3
  and (from_tick < $4 or (from_tick = $4 and after_seq <= $6))
)sql";

constexpr const char* kDeadLetter = R"sql(
insert into {schema}.projection_dlq
  (projection, global_seq, stream_id, stream_seq, event_type, body, headers, causation_id,
   correlation_id, event_created_at, error, attempts)
values ($1, $2, $3::uuid, $4, $5, $6::jsonb, $7::jsonb, $8::uuid, $9::uuid,
        to_timestamp($10::double precision / 1000000), $11, $12)
)sql";

constexpr const char* kDlqColumns =
    "d.id, d.projection, d.global_seq, d.stream_id::text, d.stream_seq, d.event_type, "
    "d.body::text, d.headers::text, d.causation_id::text, d.correlation_id::text, "
    "(extract(epoch from d.event_created_at) * 1000000)::bigint, d.error, d.attempts, "
    "(extract(epoch from d.failed_at) * 1000000)::bigint, d.requeued_at is not null";

constexpr const char* kStatusColumns =
    "name, from_tick, to_tick, after_seq, last_global_seq, paused, stopped, lease_owner, "
    "(extract(epoch from lease_expires_at) * 1000000)::bigint, lease_epoch, attempts, "
    "(extract(epoch from backoff_until) * 1000000)::bigint, last_error, "
    "(extract(epoch from updated_at) * 1000000)::bigint";

Clock::time_point from_micros(std::int64_t us) {
  return Clock::time_point(std::chrono::microseconds(us));
}

std::optional<Clock::time_point> optional_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return from_micros(f.as<std::int64_t>());
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
  s.updated_at = from_micros(r[13].as<std::int64_t>());
  return s;
}

DlqEntry dlq_from_row(const pqxx::row& r) {
  DlqEntry d;
  d.id = r[0].as<std::int64_t>();
  d.projection = r[1].as<std::string>();
  d.event.global_seq = r[2].as<std::int64_t>();
  d.event.stream_id = parse_uuid(r[3].c_str());
  d.event.stream_seq = r[4].as<std::int64_t>();
  d.event.type = r[5].as<std::string>();
  d.event.body = boost::json::parse(r[6].c_str());
  d.event.headers = boost::json::parse(r[7].c_str());
  if (!r[8].is_null()) d.event.causation_id = parse_uuid(r[8].c_str());
  if (!r[9].is_null()) d.event.correlation_id = parse_uuid(r[9].c_str());
  d.event.created_at = from_micros(r[10].as<std::int64_t>());
  d.error = r[11].as<std::string>();
  d.attempts = r[12].as<int>();
  d.failed_at = from_micros(r[13].as<std::int64_t>());
  d.requeued = r[14].as<bool>();
  return d;
}

// Runs the handler, turning anything it throws into an error message.
std::optional<std::string> call_handler(ProjectionHandler& handler, const EventEnvelope& event,
                                        Transaction& txn) {
  try {
    handler.apply(event, txn);
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("handler threw a non-standard exception");
  }
}

// Keeps the event's work (release) or undoes it (rollback). A release that fails means the
// handler left the transaction aborted (it swallowed a failing statement): that event failed.
std::optional<std::string> end_savepoint(projections::ExplicitTransaction& tx,
                                         std::optional<std::string> error) {
  if (!error) {
    try {
      tx.release_savepoint();
      return std::nullopt;
    } catch (const std::exception& e) {
      error = std::string("the handler left its transaction aborted: ") + e.what();
    }
  }
  tx.rollback_to_savepoint();
  return error;
}

std::int64_t retry_delay_ms(const ProjectionOptions& o, int attempts) {
  auto delay = o.retry_base_delay.count();
  for (int i = 1; i < attempts && delay < o.retry_max_delay.count(); ++i) delay *= 2;
  return std::max<std::int64_t>(1, std::min<std::int64_t>(delay, o.retry_max_delay.count()));
}

}  // namespace

struct Projection {
  std::string name;
  std::shared_ptr<ProjectionHandler> handler;
  ProjectionOptions options;
  std::mutex mutex;                   // serializes ticks of this projection within the process
  std::optional<std::int64_t> epoch;  // the lease epoch held, when held
  bool row_known = false;
};

struct Lease {
  std::int64_t epoch;
  bool paused, stopped, backing_off;
  FeedPosition position;
  int attempts;
  bool requeued;
};

struct ProjectionDaemon::Impl {
  explicit Impl(Store s) : store(std::move(s)), state(detail::StoreAccess::state(store)) {}

  Store store;
  std::shared_ptr<const detail::StoreState> state;
  std::string owner;
  std::chrono::milliseconds ttl;
  std::vector<std::unique_ptr<Projection>> projections;

  std::string sql(std::string_view text) const { return state->sql(text); }
  db::Pool& pool() const { return state->connections(); }

  Projection* find(const std::string& name) const {
    for (const auto& p : projections) {
      if (p->name == name) return p.get();
    }
    return nullptr;
  }
  Projection& registered(const std::string& name) const {
    if (auto* p = find(name)) return *p;
    throw Error(ErrorCode::kInvalidArgument, "no projection named '" + name + "' is registered");
  }

  std::optional<Lease> acquire(Projection& p) {
    return db::without_transaction(
        pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) -> std::optional<Lease> {
          if (!p.row_known) {
            db::exec(txn, conn, sql(kEnsureRow), p.name);
            p.row_known = true;
          }
          const auto r = db::exec(txn, conn, sql(kAcquire), p.name, owner, ttl.count());
          if (r.empty()) {
            p.epoch.reset();
            return std::nullopt;
          }
          const auto& row = r[0];
          Lease l{row[0].as<std::int64_t>(),
                  row[1].as<bool>(),
                  row[2].as<bool>(),
                  row[3].as<bool>(),
                  {row[4].as<std::int64_t>(), row[5].as<std::int64_t>(), row[6].as<std::int64_t>()},
                  row[7].as<int>(),
                  row[8].as<bool>()};
          p.epoch = l.epoch;
          return l;
        });
  }

  // Requeued DLQ entries: each delivered once under its own savepoint; success removes it.
  void redeliver_requeued(Projection& p, projections::ExplicitTransaction& tx, db::Connection& conn,
                          std::size_t& processed, std::size_t& failed) {
    auto& txn = *tx;
    const auto rows = db::exec(txn, conn,
                               sql(std::string("select ") + kDlqColumns +
                                   " from {schema}.projection_dlq d where d.projection = $1 and "
                                   "d.requeued_at is not null order by d.id for update"),
                               p.name);
    for (const auto& row : rows) {
      const auto entry = dlq_from_row(row);
      tx.savepoint();
      auto t = projections::wrap(txn, conn, state->options.schema);
      const auto error = end_savepoint(tx, call_handler(*p.handler, entry.event, t));
      if (!error) {
        db::exec(txn, conn, sql("delete from {schema}.projection_dlq where id = $1"), entry.id);
        ++processed;
      } else {
        db::exec(txn, conn,
                 sql("update {schema}.projection_dlq set requeued_at = null, "
                     "attempts = attempts + 1, error = $2, failed_at = now() "
                     "where id = $1"),
                 entry.id, *error);
        ++failed;
      }
    }
  }

  void dead_letter(Projection& p, pqxx::transaction_base& txn, db::Connection& conn,
                   const EventEnvelope& e, const std::string& error, int attempts) {
    const auto opt = [](const std::optional<Uuid>& id) {
      return id ? std::optional<std::string>(to_string(*id)) : std::nullopt;
    };
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(e.created_at.time_since_epoch())
            .count();
    db::exec(txn, conn, sql(kDeadLetter), p.name, e.global_seq, to_string(e.stream_id),
             e.stream_seq, e.type, boost::json::serialize(e.body),
             boost::json::serialize(e.headers), opt(e.causation_id), opt(e.correlation_id), micros,
             error, attempts);
  }

  bool wanted(const Projection& p, const EventEnvelope& e) const {
    const auto& types = p.options.event_types;
    return types.empty() || std::find(types.begin(), types.end(), e.type) != types.end();
  }

  enum class Mode { kFast, kCareful };

  // One attempt at the batch in one transaction. In fast mode a failing event aborts the attempt
  // (returns nullopt) so the caller retries carefully: every event under its own savepoint.
  std::optional<TickResult> process(Projection& p, const Lease& lease, const FeedBatch& batch,
                                    Mode mode) {
    return db::with_connection(pool(), [&](db::Connection& conn) -> std::optional<TickResult> {
      projections::ExplicitTransaction tx(conn);
      auto& txn = *tx;
      const auto fence = db::exec(txn, conn, sql(kFence), p.name, owner, lease.epoch);
      if (fence.empty()) {
        p.epoch.reset();
        return TickResult{TickOutcome::kLeasedByOther};
      }
      const FeedPosition now{fence[0][0].as<std::int64_t>(), fence[0][1].as<std::int64_t>(),
                             fence[0][2].as<std::int64_t>()};
      if (!(now == lease.position)) return TickResult{TickOutcome::kIdle};  // moved by an admin

      TickResult result{TickOutcome::kProcessed};
      {
        auto t = projections::wrap(txn, conn, state->options.schema);
        p.handler->prepare(t);
      }
      if (lease.requeued) redeliver_requeued(p, tx, conn, result.processed, result.failed);

      FeedPosition position = lease.position;
      std::int64_t last_seq = 0;
      int attempts = lease.attempts;
      std::optional<std::string> last_error;
      auto checkpoint = [&](std::int64_t backoff_ms, bool stop) {
        const auto r = db::exec(txn, conn, sql(kCheckpoint), p.name, owner, lease.epoch,
                                position.from_tick, position.to_tick, position.after_seq, last_seq,
                                ttl.count(), attempts, backoff_ms, last_error, stop);
        if (r.affected_rows() != 1) {
          throw Error(ErrorCode::kInternal,
                      "checkpoint of projection '" + p.name + "' was refused");
        }
        tx.commit();
      };

      for (std::size_t i = 0; i < batch.events.size(); ++i) {
        const auto& event = batch.events[i];
        if (wanted(p, event)) {
          if (mode == Mode::kCareful) tx.savepoint();
          auto t = projections::wrap(txn, conn, state->options.schema);
          auto error = call_handler(*p.handler, event, t);
          if (error && mode == Mode::kFast) return std::nullopt;
          if (mode == Mode::kCareful) error = end_savepoint(tx, std::move(error));
          if (error) {
            ++result.failed;
            last_error =
                "event " + std::to_string(event.global_seq) + " (" + event.type + "): " + *error;
            ++attempts;
            if (attempts < p.options.max_attempts) {
              checkpoint(retry_delay_ms(p.options, attempts), false);
              result.outcome = TickOutcome::kBackoff;
              return result;
            }
            if (p.options.on_failure == FailurePolicy::kStop) {
              checkpoint(0, true);
              result.outcome = TickOutcome::kStopped;
              return result;
            }
            dead_letter(p, txn, conn, event, *error, attempts);
          }
          attempts = 0;
        }
        position = batch.positions[i];
        last_seq = std::max(last_seq, event.global_seq);
        ++result.processed;
      }
      position = batch.next;
      checkpoint(0, false);
      if (result.processed == 0 && result.failed == 0) result.outcome = TickOutcome::kIdle;
      return result;
    });
  }

  TickResult tick(Projection& p) {
    std::lock_guard guard(p.mutex);
    const auto lease = acquire(p);
    if (!lease) return {TickOutcome::kLeasedByOther};
    if (lease->paused || lease->stopped) {
      // Hand the lease back: an operator may rebuild it meanwhile, or another runtime resume it.
      release_locked(p);
      return {lease->paused ? TickOutcome::kPaused : TickOutcome::kStopped};
    }
    if (lease->backing_off) return {TickOutcome::kBackoff};
    const auto batch = store.events().read_feed(lease->position, p.options.batch_size);
    if (batch.events.empty() && !lease->requeued && batch.next == lease->position) {
      return {TickOutcome::kIdle};
    }
    if (auto r = process(p, *lease, batch, Mode::kFast)) return *r;
    return *process(p, *lease, batch, Mode::kCareful);
  }

  void release(Projection& p) {
    std::lock_guard guard(p.mutex);
    release_locked(p);
  }

  void release_locked(Projection& p) {
    if (!p.epoch) return;
    db::without_transaction(pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
      db::exec(txn, conn,
               sql("update {schema}.projections set lease_owner = null, "
                   "lease_expires_at = null where name = $1 and lease_owner = $2"),
               p.name, owner);
    });
    p.epoch.reset();
  }

  // Ticks every consumer has passed (and older than ten minutes, for ad-hoc feed readers).
  void prune_ticks() {
    db::without_transaction(pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
      db::exec(txn, conn,
               sql("delete from {schema}.ticks where tick_id > 0 and created_at < now() - "
                   "interval '10 minutes' "
                   "and tick_id < (select min(from_tick) from {schema}.projections) "
                   "and tick_id < (select max(tick_id) from {schema}.ticks)"));
    });
  }

  void upsert_flags(const std::string& name, const char* set_clause) {
    db::without_transaction(pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
      db::exec(txn, conn, sql(kEnsureRow), name);
      db::exec(txn, conn,
               sql(std::string("update {schema}.projections set ") + set_clause +
                   ", updated_at = now() where name = $1"),
               name);
    });
  }
};

std::string ProjectionDaemon::new_owner_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", std::random_device{}());
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
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

ProjectionDaemonBuilder ProjectionDaemon::builder(Store store) {
  return ProjectionDaemonBuilder(std::move(store));
}

ProjectionDaemonBuilder& ProjectionDaemonBuilder::register_projection(
    std::string name, std::shared_ptr<ProjectionHandler> handler) {
  registrations_.push_back({std::move(name), std::move(handler), std::nullopt});
  return *this;
}

ProjectionDaemonBuilder& ProjectionDaemonBuilder::register_projection(
    std::string name, std::shared_ptr<ProjectionHandler> handler, ProjectionOptions options) {
  registrations_.push_back({std::move(name), std::move(handler), std::move(options)});
  return *this;
}

ProjectionDaemon ProjectionDaemonBuilder::build() {
  auto impl =
      std::make_unique<ProjectionDaemon::Impl>(schema_ ? store_.with_schema(*schema_) : store_);
  impl->owner = owner_.empty() ? ProjectionDaemon::new_owner_id() : owner_;
  impl->ttl = lease_ttl_;
  for (auto& r : registrations_) {
    if (r.name.empty() || r.name.size() > 200) {
      throw Error(ErrorCode::kInvalidArgument,
                  "a projection name must be 1 to 200 characters long");
    }
    if (!r.handler)
      throw Error(ErrorCode::kInvalidArgument, "projection '" + r.name + "' has no handler");
    if (impl->find(r.name))
      throw Error(ErrorCode::kInvalidArgument, "projection '" + r.name + "' is registered twice");
    auto p = std::make_unique<Projection>();
    p->name = r.name;
    p->handler = r.handler;
    p->options = r.options.value_or(defaults_);
    if (p->options.batch_size == 0) p->options.batch_size = 1;
    if (p->options.max_attempts < 1) p->options.max_attempts = 1;
    impl->projections.push_back(std::move(p));
  }
  return ProjectionDaemon(std::move(impl));
}

ProjectionDaemon::ProjectionDaemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProjectionDaemon::ProjectionDaemon(ProjectionDaemon&&) noexcept = default;
ProjectionDaemon::~ProjectionDaemon() {
  if (!impl_) return;
  try {
    release_leases();
  } catch (...) {
  }
}

TickResult ProjectionDaemon::tick_once(const std::string& name) {
  return impl_->tick(impl_->registered(name));
}

std::map<std::string, TickResult> ProjectionDaemon::tick_all_once() {
  std::map<std::string, TickResult> out;
  for (const auto& p : impl_->projections) out[p->name] = impl_->tick(*p);
  return out;
}

std::size_t ProjectionDaemon::run_until_idle(
    const std::function<void(const std::string&, std::size_t)>& on_progress) {
  std::size_t total = 0;
  std::map<std::string, std::size_t> per;
  bool progress = true;
  while (progress) {
    progress = false;
    for (const auto& p : impl_->projections) {
      const auto r = impl_->tick(*p);
      if (r.outcome == TickOutcome::kProcessed && r.processed + r.failed > 0) {
        progress = true;
        total += r.processed;
        per[p->name] += r.processed;
        if (on_progress) on_progress(p->name, per[p->name]);
      }
    }
  }
  return total;
}

void ProjectionDaemon::run_loop(const std::atomic<bool>& stop,
                                std::chrono::milliseconds poll_interval) {
  auto last_prune = std::chrono::steady_clock::now();
  while (!stop) {
    bool progress = false;
    for (const auto& p : impl_->projections) {
      if (stop) break;
      try {
        const auto r = impl_->tick(*p);
        progress = progress || (r.outcome == TickOutcome::kProcessed && r.processed > 0);
      } catch (const Error&) {
        // A database hiccup: the next round retries (the lease and checkpoint are intact).
      }
    }
    if (std::chrono::steady_clock::now() - last_prune > std::chrono::minutes(1)) {
      try {
        impl_->prune_ticks();
      } catch (const Error&) {
      }
      last_prune = std::chrono::steady_clock::now();
    }
    for (auto slept = std::chrono::milliseconds(0); !progress && !stop && slept < poll_interval;
         slept += std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  release_leases();
}

void ProjectionDaemon::prune_ticks() {
  impl_->prune_ticks();
}

void ProjectionDaemon::release_leases() {
  for (const auto& p : impl_->projections) impl_->release(*p);
}

void ProjectionDaemon::release_lease(const std::string& name) {
  impl_->release(impl_->registered(name));
}

std::vector<std::string> ProjectionDaemon::heartbeat() {
  return db::without_transaction(impl_->pool(), [&](pqxx::nontransaction& txn,
                                                    db::Connection& conn) {
    db::exec(
        txn, conn,
        impl_->sql(
            "insert into {schema}.daemon_nodes (owner) values ($1) on conflict (owner) do update "
            "set heartbeat_at = now()"),
        impl_->owner);
    db::exec(
        txn, conn,
        impl_->sql(
            "delete from {schema}.daemon_nodes where heartbeat_at < now() - interval '1 hour'"));
    std::vector<std::string> live;
    for (const auto& row : db::exec(
             txn, conn,
             impl_->sql("select owner from {schema}.daemon_nodes where heartbeat_at > now() - $1 * "
                        "interval '1 millisecond' order by owner"),
             impl_->ttl.count())) {
      live.push_back(row[0].as<std::string>());
    }
    return live;
  });
}

void ProjectionDaemon::leave() {
  db::without_transaction(impl_->pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
    db::exec(txn, conn, impl_->sql("delete from {schema}.daemon_nodes where owner = $1"),
             impl_->owner);
  });
}

std::vector<std::string> ProjectionDaemon::assignment(const std::vector<std::string>& live) const {
  auto names = registered();
  std::sort(names.begin(), names.end());
  auto nodes = live;
  std::sort(nodes.begin(), nodes.end());
  const auto self = std::find(nodes.begin(), nodes.end(), impl_->owner);
  if (self == nodes.end()) return names;  // alone (or not yet registered): run everything
  const auto index = static_cast<std::size_t>(self - nodes.begin());
  std::vector<std::string> mine;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i % nodes.size() == index) mine.push_back(names[i]);
  }
  return mine;
}

std::vector<std::string> ProjectionDaemon::registered() const {
  std::vector<std::string> out;
  for (const auto& p : impl_->projections) out.push_back(p->name);
  return out;
}

const std::string& ProjectionDaemon::owner_id() const {
  return impl_->owner;
}

std::vector<ProjectionStatus> ProjectionDaemon::list() const {
  return db::without_transaction(
      impl_->pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
        std::vector<ProjectionStatus> out;
        for (const auto& row : db::exec(txn, conn,
                                        impl_->sql(std::string("select ") + kStatusColumns +
                                                   " from {schema}.projections order by name"))) {
          out.push_back(status_from_row(row));
        }
        return out;
      });
}

std::optional<ProjectionStatus> ProjectionDaemon::status(const std::string& name) const {
  return db::without_transaction(
      impl_->pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
        const auto r = db::exec(txn, conn,
                                impl_->sql(std::string("select ") + kStatusColumns +
                                           " from {schema}.projections where name = $1"),
                                name);
        std::optional<ProjectionStatus> out;
        if (!r.empty()) out = status_from_row(r[0]);
        return out;
      });
}

void ProjectionDaemon::pause(const std::string& name) {
  impl_->upsert_flags(name, "paused = true");
}

void ProjectionDaemon::resume(const std::string& name) {
  impl_->upsert_flags(name, "paused = false, stopped = false, backoff_until = null, attempts = 0");
}

void ProjectionDaemon::reset_checkpoint(const std::string& name, std::int64_t after_global_seq) {
  if (after_global_seq < 0)
    throw Error(ErrorCode::kInvalidArgument, "a checkpoint cannot be negative");
  // Every event visible now with a larger global_seq lies in the batch from tick 0 to the
  // newest tick; events committing later arrive in later batches as usual.
  FeedPosition position;
  if (after_global_seq > 0) {
    const auto end = impl_->store.events().feed_end();
    if (end.from_tick > 0) position = {0, end.from_tick, after_global_seq};
  }
  db::without_transaction(impl_->pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
    db::exec(txn, conn, impl_->sql(kEnsureRow), name);
    db::exec(
        txn, conn,
        impl_->sql("update {schema}.projections set from_tick = $2, to_tick = $3, after_seq = $4, "
                   "last_global_seq = $4, attempts = 0, backoff_until = null, stopped = false, "
                   "last_error = null, updated_at = now() where name = $1"),
        name, position.from_tick, position.to_tick, position.after_seq);
  });
}

void ProjectionDaemon::rebuild(const std::string& name) {
  auto& p = impl_->registered(name);
  std::lock_guard guard(p.mutex);
  const auto lease = impl_->acquire(p);
  if (!lease) {
    throw Error(ErrorCode::kInvalidArgument,
                "projection '" + name +
                    "' is leased by another runtime; stop it (or wait for its lease to expire)");
  }
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    const auto fence = db::exec(txn, conn, impl_->sql(kFence), name, impl_->owner, lease->epoch);
    if (fence.empty())
      throw Error(ErrorCode::kInvalidArgument, "lost the lease of projection '" + name + "'");
    auto t = projections::wrap(txn, conn, impl_->state->options.schema);
    p.handler->prepare(t);
    p.handler->reset(t);
    db::exec(txn, conn, impl_->sql("delete from {schema}.projection_dlq where projection = $1"),
             name);
    db::exec(
        txn, conn,
        impl_->sql("update {schema}.projections set from_tick = 0, to_tick = 0, after_seq = 0, "
                   "last_global_seq = 0, attempts = 0, backoff_until = null, stopped = false, "
                   "last_error = null, updated_at = now() where name = $1"),
        name);
  });
}

std::vector<DlqEntry> ProjectionDaemon::dlq_list(const std::string& name, std::size_t limit) const {
  return db::without_transaction(impl_->pool(), [&](pqxx::nontransaction& txn,
                                                    db::Connection& conn) {
    std::vector<DlqEntry> out;
    for (const auto& row : db::exec(
             txn, conn,
             impl_->sql(
                 std::string("select ") + kDlqColumns +
                 " from {schema}.projection_dlq d where d.projection = $1 order by d.id limit $2"),
             name, static_cast<std::int64_t>(limit))) {
      out.push_back(dlq_from_row(row));
    }
    return out;
  });
}

bool ProjectionDaemon::dlq_requeue(const std::string& name, std::int64_t id) {
  return db::without_transaction(
      impl_->pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
        return db::exec(txn, conn,
                        impl_->sql("update {schema}.projection_dlq set requeued_at = "
                                   "now() where projection = $1 and id = $2"),
                        name, id)
                   .affected_rows() == 1;
      });
}

bool ProjectionDaemon::dlq_delete(const std::string& name, std::int64_t id) {
  return db::without_transaction(impl_->pool(), [&](pqxx::nontransaction& txn,
                                                    db::Connection& conn) {
    return db::exec(
               txn, conn,
               impl_->sql("delete from {schema}.projection_dlq where projection = $1 and id = $2"),
               name, id)
               .affected_rows() == 1;
  });
}

ProjectionMetrics ProjectionDaemon::metrics(const std::string& name) const {
  return db::without_transaction(
      impl_->pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
        const auto r = db::exec(txn, conn, impl_->sql(R"sql(
select coalesce(p.last_global_seq, 0),
       (select coalesce(max(global_seq), 0) from {schema}.events),
       extract(epoch from now() - (select e.created_at from {schema}.events e
                                   where e.global_seq > coalesce(p.last_global_seq, 0)
                                   order by e.global_seq limit 1)),
       (select count(*) from {schema}.projection_dlq d where d.projection = $1),
       extract(epoch from now() - (select min(d.failed_at) from {schema}.projection_dlq d
                                   where d.projection = $1))
from (select 1) one left join {schema}.projections p on p.name = $1
)sql"),
                                name);
        ProjectionMetrics m;
        m.name = name;
        m.position = r[0][0].as<std::int64_t>();
        m.head = r[0][1].as<std::int64_t>();
        m.lag_events = std::max<std::int64_t>(0, m.head - m.position);
        m.lag_seconds = r[0][2].is_null() ? 0.0 : std::max(0.0, r[0][2].as<double>());
        m.dlq_count = r[0][3].as<std::int64_t>();
        m.dlq_oldest_age_seconds = r[0][4].is_null() ? 0.0 : r[0][4].as<double>();
        return m;
      });
}

}  // namespace rillflow
