// ProjectionDaemon's shadow rebuilds (docs/projections.md, "Shadow rebuilds"): the read model is
// built in a shadow schema by a unit of work of its own (kind "projection_shadow": lease,
// checkpoint and DLQ through the same runner as every consumer), then swapped in with the
// shadow's checkpoint in one transaction.
//
//   begin     registry row, shadow schema and unit row (idempotent: a rerun resumes), the shadow
//             unit's lease (a second rebuild of the same projection is refused).
//   build     batches of the shadow unit until it is caught up with the head.
//   take over the live projection is paused and its lease revoked, so whichever runtime runs it
//             lets go after its current batch; then this runtime takes the lease.
//   swap      after a last catch-up, one transaction: both leases fenced, every relation of the
//             shadow schema replaces the live one of the same name (moved to an "old" schema),
//             the live checkpoint becomes the shadow's, the shadow's DLQ the live one, the pause
//             flag is restored and the live lease released. The old schema is dropped after.
// The live read model and the live checkpoint change only in the swap's transaction, so every
// failure before its commit leaves them as they were.

#include "projections/projection_runtime.hpp"

#include "db/sql.hpp"
#include "projections/transaction_access.hpp"
#include "schema/migrations.hpp"

#include <algorithm>
#include <thread>

namespace rillflow {

namespace {

constexpr const char* kShadowKind = "projection_shadow";
constexpr const char* kQuietBegin = "begin; set local client_min_messages = warning";

// The live projection's pause flag as it was before the swap paused it.
constexpr const char* kRestorePause = R"sql(
update {schema}.work_units u set paused = r.live_was_paused
from {schema}.shadow_rebuilds r
where r.name = u.name and u.kind = $1 and u.name = $2 and r.live_was_paused is not null)sql";

// Objects outside `schema` that depend on a relation in it (views, foreign keys): dropping the
// old read model would drop them too.
constexpr const char* kOutsideDependents = R"sql(
select distinct v.oid::regclass::text
from pg_depend d
join pg_rewrite rw on d.classid = 'pg_rewrite'::regclass and rw.oid = d.objid
join pg_class v on v.oid = rw.ev_class
join pg_class t on d.refclassid = 'pg_class'::regclass and t.oid = d.refobjid
join pg_namespace n on n.oid = t.relnamespace
where n.nspname = $1 and v.relnamespace <> t.relnamespace
union
select distinct c.conrelid::regclass::text
from pg_constraint c
join pg_class t on t.oid = c.confrelid
join pg_namespace n on n.oid = t.relnamespace
join pg_class r on r.oid = c.conrelid
where c.contype = 'f' and n.nspname = $1 and r.relnamespace <> t.relnamespace
order by 1)sql";

struct Relation {
  std::string name;
  char kind;  // pg_class.relkind
};

const char* alter_keyword(char relkind) {
  switch (relkind) {
    case 'v':
      return "view";
    case 'm':
      return "materialized view";
    case 'S':
      return "sequence";
    case 'f':
      return "foreign table";
    default:
      return "table";
  }
}

// Relations a shadow schema's relation must never replace: Rillflow's own, of every migration.
bool rillflow_relation(const std::string& name) {
  for (const auto& m : schema::migrations()) {
    if (std::find(m.relations.begin(), m.relations.end(), name) != m.relations.end()) return true;
  }
  return name == "rillflow_migrations";
}

// The relations a handler created in `schema`, partitions included (sequences owned by a table
// move with it).
std::vector<Relation> relations_in(pqxx::transaction_base& txn, db::Connection& conn,
                                   const std::string& schema) {
  std::vector<Relation> out;
  for (const auto& row : db::exec(txn, conn, R"sql(
select c.relname, c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
  and not (c.relkind = 'S' and exists (select 1 from pg_depend d
                                       where d.classid = 'pg_class'::regclass and d.objid = c.oid
                                         and d.deptype in ('a', 'i')))
order by c.relname)sql",
                                  schema)) {
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>().front()});
  }
  return out;
}

std::optional<char> relkind_of(pqxx::transaction_base& txn, db::Connection& conn,
                               const std::string& schema, const std::string& name) {
  const auto r = db::exec(txn, conn,
                          "select c.relkind::text from pg_class c join pg_namespace n on n.oid = "
                          "c.relnamespace where n.nspname = $1 and c.relname = $2",
                          schema, name);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>().front();
}

}  // namespace

// One shadow rebuild of one registered projection, driven by the caller's thread.
class ShadowRebuild {
 public:
  ShadowRebuild(ProjectionDaemon::Impl& impl, Projection& p)
      : impl_(impl),
        p_(p),
        shadow_key_{kShadowKind, p.name()},
        shadow_schema_(schema_name("rillflow_shadow_")),
        old_schema_(schema_name("rillflow_old_")),
        // Not the store's schema: an unqualified name prepare() did not create in the shadow must
        // fail loudly, not write to the live read model.
        consumer_(p, impl.state->options.schema, shadow_schema_,
                  "set local search_path to " + db::quote_ident(shadow_schema_) + ", public") {}

  const std::string& shadow_schema() const { return shadow_schema_; }
  const std::string& old_schema() const { return old_schema_; }
  const runtime::UnitKey& key() const { return shadow_key_; }

  void begin() {
    db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
      impl_.leases.ensure(txn, conn, p_.key);
      p_.memo.row_known = true;
      db::exec(txn, conn,
               impl_.sql("insert into {schema}.shadow_rebuilds (name, shadow_schema) values ($1, "
                         "$2) on conflict (name) do nothing"),
               p_.name(), shadow_schema_);
      impl_.leases.ensure(txn, conn, shadow_key_);
      memo_.row_known = true;
      memo_.epoch = impl_.leases.acquire_or_throw(txn, conn, shadow_key_).epoch;
    });
    ddl("create schema if not exists " + db::quote_ident(shadow_schema_) +
        // Left over when dropping it failed after an earlier swap.
        "; drop schema if exists " + db::quote_ident(old_schema_) + " cascade");
  }

  // Schema statements in a transaction of their own, without their NOTICEs ("skipping",
  // "drop cascades to ...") on the caller's stderr.
  void ddl(const std::string& statements) {
    db::with_connection(impl_.pool(), [&](db::Connection& conn) {
      projections::ExplicitTransaction tx(conn, kQuietBegin);
      (*tx).exec(statements);
      tx.commit();
    });
  }

  // Batches until caught up (true) or should_stop (false). Throws when the shadow stops on a
  // failing event or its unit was cancelled.
  bool build(const ShadowRebuildOptions& options, ShadowRebuildReport& report) {
    while (true) {
      if (options.should_stop && options.should_stop()) return false;
      const auto r = impl_.runner.run_batch(shadow_key_, consumer_, p_.run, memo_);
      report.processed += r.processed;
      report.parked += static_cast<std::int64_t>(r.parked);
      switch (r.outcome) {
        case runtime::BatchOutcome::kProcessed:
          if (options.on_progress) {
            if (auto progress = impl_.shadow_progress(p_.name())) options.on_progress(*progress);
          }
          break;
        case runtime::BatchOutcome::kIdle:
          return true;
        case runtime::BatchOutcome::kBackoff: {
          const auto wait =
              std::chrono::ceil<std::chrono::milliseconds>(*r.retry_at - impl_.clock());
          impl_.sleeper(std::max(std::chrono::milliseconds(1), wait));
          break;
        }
        case runtime::BatchOutcome::kStopped:
        case runtime::BatchOutcome::kPaused:
          throw Error(ErrorCode::kHandlerFailed,
                      "the shadow build of projection '" + p_.name() +
                          "' stopped on a failing event (" + last_error() +
                          "); the live read model is untouched. Fix the handler and run the "
                          "rebuild again (it resumes), or cancel it");
        case runtime::BatchOutcome::kLeaseHeldElsewhere:
        case runtime::BatchOutcome::kLeaseLost:
          throw Error(ErrorCode::kLeaseLost, "the shadow rebuild of projection '" + p_.name() +
                                                 "' was cancelled or taken over by another "
                                                 "process; the live read model is untouched");
      }
    }
  }

  // The live projection's lease, renewed when this runtime holds it, else taken over; returns
  // the epoch.
  std::int64_t hold_live(const ShadowRebuildOptions& options) {
    if (p_.memo.epoch) {
      const auto held =
          db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
            return impl_.leases.acquire(txn, conn, p_.key);
          });
      if (held && held->epoch == *p_.memo.epoch) return held->epoch;
    }
    return take_over_live(options);
  }

  // Renews the shadow unit's lease (the swap fences it); kLeaseLost when cancelled meanwhile.
  void renew_shadow() {
    const auto held = db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
      return impl_.leases.acquire(txn, conn, shadow_key_);
    });
    if (!held || held->epoch != *memo_.epoch) {
      throw Error(ErrorCode::kLeaseLost, "the shadow rebuild of projection '" + p_.name() +
                                             "' was cancelled or taken over by another process");
    }
  }

  // Pauses the live projection, revokes its lease and takes it; returns the epoch.
  std::int64_t take_over_live(const ShadowRebuildOptions& options) {
    db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
      db::exec(txn, conn, impl_.sql(R"sql(
update {schema}.shadow_rebuilds r set live_was_paused = coalesce(r.live_was_paused,
  (select u.paused from {schema}.work_units u where u.kind = $2 and u.name = r.name))
where r.name = $1)sql"),
               p_.name(), kProjectionKind);
      db::exec(txn, conn,
               impl_.sql("update {schema}.work_units set paused = true, updated_at = now() "
                         "where kind = $1 and name = $2"),
               kProjectionKind, p_.name());
      impl_.leases.revoke(txn, conn, p_.key);  // waits for the holder's batch in flight
    });
    const auto deadline = std::chrono::steady_clock::now() + options.takeover_timeout;
    while (true) {
      const auto got =
          db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
            return impl_.leases.acquire(txn, conn, p_.key);
          });
      if (got) {
        p_.memo.epoch = got->epoch;
        return got->epoch;
      }
      // Another runtime took it back before seeing the pause: it lets go at its next batch.
      renew_shadow();
      if (std::chrono::steady_clock::now() > deadline) {
        throw Error(ErrorCode::kTimeout,
                    "the runtime running projection '" + p_.name() + "' did not let go of its "
                    "lease within " + std::to_string(options.takeover_timeout.count()) +
                        " ms; nothing was swapped and the shadow is kept: run the rebuild again");
      }
      impl_.sleeper(std::chrono::milliseconds(50));
    }
  }

  // The swap transaction; throws kTimeout when the live relations could not be locked in time.
  void swap(std::int64_t live_epoch, const ShadowRebuildOptions& options,
            ShadowRebuildReport& report) {
    db::with_connection(impl_.pool(), [&](db::Connection& conn) {
      projections::ExplicitTransaction tx(
          conn, std::string(kQuietBegin) + "; set local lock_timeout = " +
                    std::to_string(std::max<std::int64_t>(1, options.lock_timeout.count())));
      auto& txn = *tx;
      impl_.leases.fence(txn, conn, p_.key, live_epoch);
      const auto shadow = impl_.leases.fence(txn, conn, shadow_key_, *memo_.epoch);
      const auto last = db::exec(txn, conn,
                                 impl_.sql("select last_global_seq from {schema}.work_units "
                                           "where kind = $1 and name = $2"),
                                 shadow_key_.kind, shadow_key_.name)[0][0]
                            .as<std::int64_t>();
      const auto relations = relations_in(txn, conn, shadow_schema_);
      for (const auto& r : relations) {
        if (rillflow_relation(r.name)) {
          throw Error(ErrorCode::kInvalidArgument,
                      "the shadow read model of projection '" + p_.name() + "' has a relation "
                      "named '" + r.name + "', which is one of Rillflow's own tables; the "
                      "handler must use other names (nothing was swapped)");
        }
      }
      const auto& live_schema = impl_.state->options.schema;
      const auto old = db::quote_ident(old_schema_);
      txn.exec("create schema " + old);
      report.relations.clear();
      for (const auto& r : relations) {
        const auto name = db::quote_ident(r.name);
        if (const auto live_kind = relkind_of(txn, conn, live_schema, r.name)) {
          txn.exec(std::string("alter ") + alter_keyword(*live_kind) + " " +
                   impl_.state->quoted_schema + "." + name + " set schema " + old);
        }
        txn.exec(std::string("alter ") + alter_keyword(r.kind) + " " +
                 db::quote_ident(shadow_schema_) + "." + name + " set schema " +
                 impl_.state->quoted_schema);
        report.relations.push_back(r.name);
      }
      const auto dependents = db::exec(txn, conn, kOutsideDependents, old_schema_);
      if (!dependents.empty()) {
        std::string list;
        for (const auto& row : dependents) {
          list += (list.empty() ? "" : ", ") + row[0].as<std::string>();
        }
        throw Error(ErrorCode::kInvalidArgument,
                    "the live read model of projection '" + p_.name() + "' has dependents the "
                    "handler does not create (" + list + "): they would point at the old read "
                    "model and be dropped with it. Create them in the handler's prepare(), or "
                    "drop them; nothing was swapped");
      }
      impl_.runner.checkpoints().reset(txn, conn, p_.key, shadow.position, last);
      impl_.runner.parking().transfer(txn, conn, shadow_key_, p_.key);
      db::exec(txn, conn, impl_.sql(R"sql(
update {schema}.work_units u set paused = coalesce(r.live_was_paused, u.paused)
from {schema}.shadow_rebuilds r where r.name = u.name and u.kind = $1 and u.name = $2)sql"),
               kProjectionKind, p_.name());
      forget(txn, conn, false);
      impl_.leases.release(txn, conn, p_.key);
      tx.commit();
      p_.memo.epoch.reset();
      report.last_global_seq = last;
    });
  }

  // Deletes the shadow's unit, DLQ, registry row and schema (in the caller's transaction);
  // false when there was no registry row. Without `cascade` (the swap), anything left in the
  // shadow schema that the swap does not move (a type, a function) aborts the transaction: it
  // may be what the moved relations use.
  bool forget(pqxx::transaction_base& txn, db::Connection& conn, bool cascade) {
    const bool registered =
        db::exec(txn, conn, impl_.sql("delete from {schema}.shadow_rebuilds where name = $1"),
                 p_.name())
            .affected_rows() == 1;
    impl_.runner.parking().clear(txn, conn, shadow_key_);
    db::exec(txn, conn,
             impl_.sql("delete from {schema}.work_units where kind = $1 and name = $2"),
             shadow_key_.kind, shadow_key_.name);
    const auto drop = "drop schema if exists " + db::quote_ident(shadow_schema_);
    if (cascade) {
      txn.exec(drop + " cascade");
    } else {
      try {
        txn.exec(drop);
      } catch (const pqxx::sql_error& e) {
        throw Error(ErrorCode::kInvalidArgument,
                    "the shadow schema of projection '" + p_.name() + "' holds objects a swap "
                    "does not move (types, functions: only tables, views, sequences and foreign "
                    "tables move); nothing was swapped (" + db::trim_message(e.what()) + ")");
      }
    }
    memo_ = {};
    return registered;
  }

  // After a failed take-over or swap: the live projection's pause flag as it was, its lease
  // handed back. Best effort (the original failure is what the caller reports).
  void restore_live() noexcept {
    try {
      db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
        db::exec(txn, conn, impl_.sql(kRestorePause), kProjectionKind, p_.name());
        db::exec(txn, conn,
                 impl_.sql("update {schema}.shadow_rebuilds set live_was_paused = null "
                           "where name = $1"),
                 p_.name());
        impl_.leases.release(txn, conn, p_.key);
      });
      p_.memo.epoch.reset();
    } catch (...) {
    }
  }

  void release() noexcept {
    try {
      impl_.runner.release(shadow_key_, memo_);
    } catch (...) {
    }
  }

 private:
  // Derived from (store schema, projection name) by a hash: nothing a caller passed reaches SQL
  // text, any name fits PostgreSQL's 63 bytes, and a rerun finds the same shadow.
  std::string schema_name(const char* prefix) const {
    return prefix +
           schema::checksum(impl_.state->options.schema + std::string(1, '\0') + p_.name());
  }

  std::string last_error() const {
    return db::without_transaction(impl_.pool(), [&](auto& txn, db::Connection& conn) {
      const auto r = db::exec(txn, conn,
                              impl_.sql("select coalesce(last_error, 'no error recorded') from "
                                        "{schema}.work_units where kind = $1 and name = $2"),
                              shadow_key_.kind, shadow_key_.name);
      return r.empty() ? std::string("its unit is gone") : r[0][0].template as<std::string>();
    });
  }

  ProjectionDaemon::Impl& impl_;
  Projection& p_;
  runtime::UnitKey shadow_key_;
  std::string shadow_schema_, old_schema_;
  HandlerConsumer consumer_;
  runtime::UnitMemo memo_;
};

std::optional<ShadowRebuildProgress> ProjectionDaemon::Impl::shadow_progress(
    const std::string& name) const {
  return db::without_transaction(pool(), [&](auto& txn, db::Connection& conn) {
    const auto r = db::exec(txn, conn, sql(R"sql(
select r.shadow_schema, (extract(epoch from r.started_at) * 1000000)::bigint,
       coalesce(u.last_global_seq, 0),
       (select coalesce(max(global_seq), 0) from {schema}.events),
       extract(epoch from now() - r.started_at)::float8
from {schema}.shadow_rebuilds r
left join {schema}.work_units u on u.kind = $2 and u.name = r.name
where r.name = $1)sql"),
                            name, kShadowKind);
    std::optional<ShadowRebuildProgress> out;
    if (r.empty()) return out;
    ShadowRebuildProgress p;
    p.name = name;
    p.shadow_schema = r[0][0].template as<std::string>();
    p.started_at = runtime::from_micros(r[0][1].template as<std::int64_t>());
    p.done = r[0][2].template as<std::int64_t>();
    p.total = std::max(p.done, r[0][3].template as<std::int64_t>());
    const double elapsed = r[0][4].template as<double>();
    p.rate = elapsed > 0 ? static_cast<double>(p.done) / elapsed : 0.0;
    if (p.done >= p.total) {
      p.eta_seconds = 0.0;
    } else if (p.rate > 0) {
      p.eta_seconds = static_cast<double>(p.total - p.done) / p.rate;
    }
    out = p;
    return out;
  });
}

Json to_json(const ShadowRebuildProgress& p) {
  return boost::json::object{
      {"name", p.name},
      {"shadow_schema", p.shadow_schema},
      {"done", p.done},
      {"total", p.total},
      {"rate", p.rate},
      {"eta_seconds", p.eta_seconds ? Json(*p.eta_seconds) : Json(nullptr)},
      {"started_at", format_timestamp(p.started_at)}};
}

ShadowRebuildReport ProjectionDaemon::rebuild_shadow(const std::string& name,
                                                     const ShadowRebuildOptions& options) {
  auto& p = impl_->registered(name);
  if (!p.handler->supports_shadow_rebuild()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the handler of projection '" + name +
                    "' does not support shadow rebuilds (it must declare "
                    "supports_shadow_rebuild(); see docs/projections.md, \"Shadow rebuilds\"); "
                    "nothing was written. Rebuild it in place instead");
  }
  ShadowRebuild rebuild(*impl_, p);
  ShadowRebuildReport report;
  rebuild.begin();
  try {
    // The build runs beside the live projection, in this runtime too: its mutex is not held.
    if (!rebuild.build(options, report)) {
      rebuild.release();
      return report;
    }
    // From the take-over to the swap this runtime's own ticks of the live projection wait.
    std::lock_guard guard(p.mutex);
    auto last_catch_up = options;
    last_catch_up.should_stop = nullptr;
    try {
      for (int attempt = 1;; ++attempt) {
        try {
          rebuild.hold_live(options);
          rebuild.build(last_catch_up, report);
          const auto live_epoch = rebuild.hold_live(options);  // renewed for the swap's fence
          rebuild.renew_shadow();
          rebuild.swap(live_epoch, options, report);
          break;
        } catch (const Error& e) {
          // Readers' locks (lock_timeout, a deadlock) or a lease that expired meanwhile.
          const bool transient = e.code() == ErrorCode::kTimeout || e.retryable() ||
                                 e.code() == ErrorCode::kLeaseLost;
          if (!transient || attempt == 3) throw;
        }
      }
    } catch (const Error& e) {
      rebuild.restore_live();
      if (e.code() != ErrorCode::kTimeout) throw;
      throw Error(ErrorCode::kTimeout,
                  "could not swap in the new read model of projection '" + name + "' (" +
                      e.what() + "; three attempts, locks awaited " +
                      std::to_string(options.lock_timeout.count()) +
                      " ms each): nothing was swapped and the shadow is kept; run the rebuild "
                      "again");
    } catch (...) {
      rebuild.restore_live();
      throw;
    }
  } catch (...) {
    rebuild.release();
    throw;
  }
  report.swapped = true;
  try {
    rebuild.ddl("drop schema if exists " + db::quote_ident(rebuild.old_schema()) + " cascade");
  } catch (const Error& e) {
    throw Error(e.code(), "the new read model of projection '" + name +
                              "' is live, but dropping the old one failed: " + e.what() +
                              "; drop it with: drop schema " +
                              db::quote_ident(rebuild.old_schema()) + " cascade");
  }
  return report;
}

bool ProjectionDaemon::cancel_shadow_rebuild(const std::string& name) {
  impl_->require_known(name);
  Projection* registered = impl_->find(name);
  Projection stored;  // an unregistered projection's shadow is cancelled all the same
  if (registered == nullptr) stored.key = {kProjectionKind, name};
  ShadowRebuild rebuild(*impl_, registered ? *registered : stored);
  return db::with_connection(impl_->pool(), [&](db::Connection& conn) {
    projections::ExplicitTransaction tx(conn, kQuietBegin);
    auto& txn = *tx;
    // Un-pause the live projection when a swap in progress paused it.
    db::exec(txn, conn, impl_->sql(kRestorePause), kProjectionKind, name);
    if (!rebuild.forget(txn, conn, true)) return false;  // none (or a swap just committed)
    tx.commit();
    return true;
  });
}

std::optional<ShadowRebuildProgress> ProjectionDaemon::shadow_rebuild_progress(
    const std::string& name) const {
  return impl_->shadow_progress(name);
}

}  // namespace rillflow
