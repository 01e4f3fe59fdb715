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
  /// Committed events beyond the projection's last handled global_seq.
  std::int64_t remaining(const std::string& name) const;
};

}  // namespace rillflow
