// The projection runtime: projections as units of work of kind "projection", run by the runtime
// units (lease, checkpoint, feed reader, parking, runner, membership; docs/projections.md).

#include "projections/projection_runtime.hpp"

#include "db/sql.hpp"
#include "projections/transaction_access.hpp"

#include <unistd.h>
#include <algorithm>
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

TickOutcome outcome_of(runtime::BatchOutcome o) {
  switch (o) {
    case runtime::BatchOutcome::kIdle:
      return TickOutcome::kIdle;
    case runtime::BatchOutcome::kProcessed:
      return TickOutcome::kProcessed;
    case runtime::BatchOutcome::kPaused:
      return TickOutcome::kPaused;
    case runtime::BatchOutcome::kStopped:
      return TickOutcome::kStopped;
    case runtime::BatchOutcome::kBackoff:
      return TickOutcome::kBackoff;
    case runtime::BatchOutcome::kLeaseHeldElsewhere:
    case runtime::BatchOutcome::kLeaseLost:
      return TickOutcome::kLeasedByOther;
  }
  return TickOutcome::kIdle;
}

}  // namespace

HandlerConsumer::HandlerConsumer(Projection& p, const std::string& schema,
                                 std::string target_schema, std::string search_path_sql)
    : p_(p),
      schema_(schema),
      target_(std::move(target_schema)),
      search_path_sql_(std::move(search_path_sql)) {}

bool HandlerConsumer::wants(const EventEnvelope& e) const {
  const auto& types = p_.options.event_types;
  return types.empty() || std::find(types.begin(), types.end(), e.type) != types.end();
}

void HandlerConsumer::begin_batch(pqxx::transaction_base& txn, db::Connection& conn) {
  if (!search_path_sql_.empty()) txn.exec(search_path_sql_);
  auto t = projections::wrap(txn, conn, schema_, target_);
  p_.handler->prepare(t);
}

template <class Fn>
std::optional<std::string> HandlerConsumer::guarded(Fn&& fn) {
  try {
    fn();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("handler threw a non-standard exception");
  }
}

std::optional<std::string> HandlerConsumer::apply(const EventEnvelope& event,
                                                  pqxx::transaction_base& txn,
                                                  db::Connection& conn) {
  return guarded([&] {
    auto t = projections::wrap(txn, conn, schema_, target_);
    p_.handler->apply(event, t);
  });
}

std::optional<std::string> HandlerConsumer::apply_batch(const EventBatch& events,
                                                        pqxx::transaction_base& txn,
                                                        db::Connection& conn) {
  return guarded([&] {
    auto t = projections::wrap(txn, conn, schema_, target_);
    p_.handler->apply_batch(events, t);
  });
}

ProjectionDaemon::Impl::Impl(Store s, std::string owner_id, std::chrono::milliseconds lease_ttl,
                             std::chrono::milliseconds heartbeat_interval,
                             runtime::WallClock wall_clock, runtime::Sleeper sleep)
    : store(std::move(s)),
      state(detail::StoreAccess::state(store)),
      owner(std::move(owner_id)),
      ttl(lease_ttl),
      clock(wall_clock ? std::move(wall_clock)
                       : runtime::WallClock(std::chrono::system_clock::now)),
      sleeper(sleep ? std::move(sleep) : runtime::Sleeper([](std::chrono::milliseconds d) {
        std::this_thread::sleep_for(d);
      })),
      leases(*state, owner, ttl),
      runner(*state, leases, clock),
      membership(*state, owner, runtime::Membership::live_window_for(heartbeat_interval, ttl)) {}

Projection* ProjectionDaemon::Impl::find(const std::string& name) const {
  for (const auto& p : projections) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

Projection& ProjectionDaemon::Impl::registered(const std::string& name) const {
  if (auto* p = find(name)) return *p;
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a projection name must not be empty");
  throw NotFound("registered projection", name);
}

TickResult ProjectionDaemon::Impl::tick(Projection& p) {
  std::lock_guard guard(p.mutex);
  HandlerConsumer consumer(p, state->options.schema);
  const auto r = runner.run_batch(p.key, consumer, p.run, p.memo);
  TickResult out{outcome_of(r.outcome), r.processed, r.failed, r.parked, r.retry_at};
  return out;
}

void ProjectionDaemon::Impl::release(Projection& p) {
  std::lock_guard guard(p.mutex);
  runner.release(p.key, p.memo);
}

// Ticks every consumer has passed (and older than ten minutes, for ad-hoc feed readers).
void ProjectionDaemon::Impl::prune_ticks() {
  db::without_transaction(pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
    db::exec(txn, conn,
             sql("delete from {schema}.ticks where tick_id > 0 and created_at < now() - "
                 "interval '10 minutes' "
                 "and tick_id < (select min(from_tick) from {schema}.work_units "
                 "where kind <> 'snapshotter') "  // feed consumers only
                 "and tick_id < (select max(tick_id) from {schema}.ticks)"));
  });
}

std::string ProjectionDaemon::new_owner_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", std::random_device{}());
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
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
  if (lease_ttl_.count() < 1)
    throw Error(ErrorCode::kInvalidArgument, "the lease TTL must be at least 1 ms");
  if (heartbeat_interval_.count() < 1)
    throw Error(ErrorCode::kInvalidArgument, "the heartbeat interval must be at least 1 ms");
  auto impl = std::make_unique<ProjectionDaemon::Impl>(
      schema_ ? store_.with_schema(*schema_) : store_,
      owner_.empty() ? ProjectionDaemon::new_owner_id() : owner_, lease_ttl_, heartbeat_interval_,
      clock_, sleeper_);
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
    p->key = {kProjectionKind, r.name};
    p->handler = r.handler;
    p->options = r.options.value_or(defaults_);
    if (p->options.batch_size == 0) p->options.batch_size = 1;
    if (p->options.max_attempts < 1) p->options.max_attempts = 1;
    p->run.batch_size = p->options.batch_size;
    p->run.retry = runtime::RetryPolicy::of(p->options);
    p->run.external_ticker = external_ticker_;
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
  for (const auto& p : impl_->projections) out[p->name()] = impl_->tick(*p);
  return out;
}

RunReport ProjectionDaemon::run_until_idle(
    const std::function<void(const std::string&, std::size_t)>& on_progress) {
  std::vector<Projection*> all;
  for (const auto& p : impl_->projections) all.push_back(p.get());
  return impl_->run_until_idle(all, on_progress);
}

RunReport ProjectionDaemon::run_until_idle(
    const std::string& name,
    const std::function<void(const std::string&, std::size_t)>& on_progress) {
  return impl_->run_until_idle({&impl_->registered(name)}, on_progress);
}

RunReport ProjectionDaemon::Impl::run_until_idle(
    const std::vector<Projection*>& which,
    const std::function<void(const std::string&, std::size_t)>& on_progress) {
  RunReport report;
  std::map<std::string, std::size_t> per;
  while (true) {
    bool progress = false;
    std::optional<std::chrono::system_clock::time_point> wake;
    for (auto* p : which) {
      const auto r = tick(*p);
      report.processed += r.processed;
      report.parked += r.parked;
      if (r.outcome == TickOutcome::kBackoff && r.retry_at) {
        wake = wake ? std::min(*wake, *r.retry_at) : *r.retry_at;
      }
      if (r.processed > 0 || (r.outcome == TickOutcome::kProcessed && r.failed > 0)) {
        progress = true;
        per[p->name()] += r.processed;
        if (on_progress) on_progress(p->name(), per[p->name()]);
      }
    }
    if (progress) continue;
    if (!wake) break;
    // A failed event waits for its retry: wait it out, then go on.
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*wake - clock());
    sleeper(std::max(std::chrono::milliseconds(1), wait));
  }
  for (auto* p : which) report.remaining += remaining(p->name());
  return report;
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
  return impl_->membership.heartbeat();
}

void ProjectionDaemon::leave() {
  impl_->membership.leave();
}

std::vector<std::string> ProjectionDaemon::assignment(const std::vector<std::string>& live) const {
  std::vector<runtime::UnitKey> units;
  for (const auto& p : impl_->projections) units.push_back(p->key);
  std::vector<std::string> mine;
  for (const auto& key : runtime::Membership::assign(std::move(units), live, impl_->owner))
    mine.push_back(key.name);
  return mine;
}

std::vector<std::string> ProjectionDaemon::registered() const {
  std::vector<std::string> out;
  for (const auto& p : impl_->projections) out.push_back(p->name());
  return out;
}

const std::string& ProjectionDaemon::owner_id() const {
  return impl_->owner;
}

}  // namespace rillflow
