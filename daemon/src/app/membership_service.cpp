#include "app/membership_service.hpp"

#include "runtime/on_pool.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace rillflow::app {

namespace asio = boost::asio;

namespace {

// Pool work is built by plain functions, never by lambdas written inside a coroutine body:
// g++ 12 mishandles init-captures of coroutine locals (double destruction).
struct Round {
  std::vector<std::string> live;
  std::vector<runtime::UnitKey> mine;
  std::string error;
};

auto round_work(std::vector<std::shared_ptr<ProjectionDaemon>> runtimes,
                std::vector<runtime::UnitKey> units, bool prune_due, std::string owner) {
  return
      [runtimes = std::move(runtimes), units = std::move(units), prune_due, owner = std::move(owner)] {
        Round out;
        try {
          out.live = runtimes.front()->heartbeat();  // the base schema's: one membership
          if (prune_due) {
            for (const auto& runtime : runtimes) runtime->prune_ticks();
          }
          out.mine = runtime::assign_units(units, out.live, owner);
        } catch (const std::exception& e) {
          out.error = e.what();
        }
        return out;
      };
}

std::string in_tenant(const runtime::UnitKey& key) {
  return key.tenant.empty() ? std::string() : " of tenant " + key.tenant;
}

std::vector<runtime::UnitKey> unit_keys(const runtime::Scheduler& scheduler) {
  std::vector<runtime::UnitKey> units;
  for (const auto& worker : scheduler.workers()) units.push_back(worker->key());
  return units;
}

}  // namespace

AssignmentChange apply_assignment(const std::vector<std::shared_ptr<runtime::Worker>>& workers,
                                  const std::vector<runtime::UnitKey>& mine) {
  AssignmentChange change;
  for (const auto& worker : workers) {
    const bool assigned = std::find(mine.begin(), mine.end(), worker->key()) != mine.end();
    if (assigned == worker->assigned()) continue;
    (assigned ? change.gained : change.lost).push_back(worker->key());
    worker->set_assigned(assigned);
  }
  return change;
}

MembershipService::MembershipService(Context& ctx, std::function<void()> on_round)
    : ctx_(ctx), on_round_(std::move(on_round)), timer_(ctx.loop) {}

void MembershipService::start() {
  asio::co_spawn(ctx_.loop, run(), asio::detached);
}

void MembershipService::kick() {
  kicked_ = true;
  timer_.cancel();
}

void MembershipService::stop(std::function<void()> done) {
  stopped_ = true;
  timer_.cancel();
  if (in_round_) {
    on_stopped_ = std::move(done);
  } else {
    done();
  }
}

asio::awaitable<void> MembershipService::run() {
  while (!stopped_) {
    kicked_ = false;
    in_round_ = true;
    co_await round();
    in_round_ = false;
    if (stopped_) break;
    if (kicked_) continue;
    timer_.expires_after(kHeartbeatInterval);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (on_stopped_) std::exchange(on_stopped_, nullptr)();
}

asio::awaitable<void> MembershipService::round() {
  if (!ctx_.daemon || ctx_.snapshot.draining) co_return;
  auto daemon = ctx_.daemon;
  const bool prune_due = std::chrono::steady_clock::now() - last_prune_ > std::chrono::minutes(1);
  if (prune_due) last_prune_ = std::chrono::steady_clock::now();
  Round r = co_await runtime::on_pool(
      ctx_.pool, round_work(ctx_.runtimes(), unit_keys(ctx_.scheduler), prune_due, ctx_.owner));
  // A reload replaced the runtime meanwhile, or a drain began: this round's answer is stale.
  if (daemon != ctx_.daemon || ctx_.snapshot.draining) co_return;
  if (!r.error.empty()) {
    spdlog::debug("membership: {}", r.error);  // the status service reports the database
    co_return;
  }
  ctx_.live_nodes = std::move(r.live);
  const auto change = apply_assignment(ctx_.scheduler.workers(), r.mine);
  for (const auto& key : change.gained) {
    spdlog::info("membership: gained {} '{}'{}", key.kind, key.name, in_tenant(key));
    ctx_.scheduler.wake(key);
  }
  for (const auto& key : change.lost) {
    spdlog::info("membership: {} '{}'{} moved to another node", key.kind, key.name,
                 in_tenant(key));
    ctx_.scheduler.wake(key);  // its next slice gives the lease back
  }
  if (on_round_ && (!change.gained.empty() || !change.lost.empty())) on_round_();
}

}  // namespace rillflow::app
