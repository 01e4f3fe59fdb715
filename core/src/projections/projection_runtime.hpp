#pragma once
// ProjectionDaemon's state, shared by projection_daemon.cpp (running) and projection_admin.cpp
// (operator calls). The work itself is done by the runtime units (runtime/*.hpp); a projection
// is a unit of kind "projection" whose consumer is its handler.

#include <rillflow/error.hpp>
#include <rillflow/projections/projection_daemon.hpp>

#include "runtime/lease.hpp"
#include "runtime/membership.hpp"
#include "runtime/runner.hpp"
#include "store_state.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rillflow {

inline constexpr const char* kProjectionKind = "projection";

struct Projection {
  runtime::UnitKey key;
  std::shared_ptr<ProjectionHandler> handler;
  ProjectionOptions options;
  runtime::RunnerOptions run;
  std::mutex mutex;  // serializes ticks of this projection within the process
  runtime::UnitMemo memo;
  const std::string& name() const { return key.name; }
};

/// A projection's handler as the runner's consumer; exceptions never leave apply() or
/// apply_batch(). For a shadow rebuild, `target_schema` is the shadow schema and
/// `search_path_sql` ("set local search_path to shadow, store, public") runs at the start of
/// every batch transaction, so the handler's unqualified names resolve to the shadow first.
class HandlerConsumer final : public runtime::Consumer {
 public:
  HandlerConsumer(Projection& p, const std::string& schema, std::string target_schema = {},
                  std::string search_path_sql = {});
  bool wants(const EventEnvelope& e) const override;
  void begin_batch(pqxx::transaction_base& txn, db::Connection& conn) override;
  std::optional<std::string> apply(const EventEnvelope& event, pqxx::transaction_base& txn,
                                   db::Connection& conn) override;
  std::optional<std::string> apply_batch(const EventBatch& events, pqxx::transaction_base& txn,
                                         db::Connection& conn) override;

 private:
  template <class Fn>
  static std::optional<std::string> guarded(Fn&& fn);

  Projection& p_;
  const std::string& schema_;
  std::string target_;
  std::string search_path_sql_;
};

struct ProjectionDaemon::Impl {
  Impl(Store s, std::string owner_id, std::chrono::milliseconds lease_ttl,
       std::chrono::milliseconds heartbeat_interval, runtime::WallClock wall_clock,
       runtime::Sleeper sleep);

  Store store;
  std::shared_ptr<const detail::StoreState> state;
  std::string owner;
  std::chrono::milliseconds ttl;
  runtime::WallClock clock;
  runtime::Sleeper sleeper;
  runtime::Leases leases;
  runtime::Runner runner;
  runtime::Membership membership;
  std::vector<std::unique_ptr<Projection>> projections;

  std::string sql(std::string_view text) const { return state->sql(text); }
  db::Pool& pool() const { return state->connections(); }

  Projection* find(const std::string& name) const;
  /// The registered projection, or NotFound.
  Projection& registered(const std::string& name) const;
  /// Throws kInvalidArgument for an empty name and NotFound for one neither registered nor
  /// stored; writes nothing.
  void require_known(const std::string& name) const;

  TickResult tick(Projection& p);
  /// Ticks `which` until done, waiting out retry backoffs with `sleeper`.
  RunReport run_until_idle(const std::vector<Projection*>& which,
                           const std::function<void(const std::string&, std::size_t)>& on_progress);
  void release(Projection& p);
  void prune_ticks();
  /// The shadow rebuild of `name` (shadow_rebuild.cpp), when one exists.
  std::optional<ShadowRebuildProgress> shadow_progress(const std::string& name) const;
  /// Committed events beyond the projection's last handled global_seq.
  std::int64_t remaining(const std::string& name) const;
};

}  // namespace rillflow
