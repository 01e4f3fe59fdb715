#include "app/drain_service.hpp"

#include "app/systemd_notify.hpp"
#include "runtime/on_pool.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>

namespace rillflow::app {

namespace asio = boost::asio;

namespace {
// Built outside the coroutine bodies (g++ 12 mishandles lambdas capturing coroutine locals).
std::function<void()> on_done(bool& done, asio::steady_timer& idle) {
  return [&done, &idle] {
    done = true;
    idle.cancel();
  };
}
}  // namespace

asio::awaitable<void> scheduler_drained(Context& ctx) {
  asio::steady_timer idle(ctx.loop, asio::steady_timer::time_point::max());
  bool done = false;
  ctx.scheduler.drain(on_done(done, idle));
  if (done) co_return;
  boost::system::error_code ec;
  co_await idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

namespace {

// Built outside the coroutine body (g++ 12 mishandles captures of coroutine locals).
auto leave_work(std::vector<std::shared_ptr<ProjectionDaemon>> runtimes,
                std::vector<std::shared_ptr<runtime::Worker>> workers) {
  return [runtimes = std::move(runtimes), workers = std::move(workers)] {
    for (const auto& w : workers) w->release();  // subscription units leave their groups
    try {
      for (const auto& runtime : runtimes) runtime->release_leases();
      runtimes.front()->leave();  // the base schema's membership
      spdlog::info("leases released");
    } catch (const std::exception& e) {
      spdlog::warn("could not release leases: {} (they expire after daemon.lease_ttl_ms)",
                   e.what());
    }
  };
}

asio::awaitable<void> membership_stopped(Context& ctx, MembershipService& membership) {
  asio::steady_timer idle(ctx.loop, asio::steady_timer::time_point::max());
  bool done = false;
  membership.stop(on_done(done, idle));
  if (done) co_return;
  boost::system::error_code ec;
  co_await idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}
}  // namespace

DrainService::DrainService(Context& ctx, MembershipService& membership,
                           std::function<void()> stop_wakeups, std::function<void(int)> finish)
    : ctx_(ctx),
      membership_(membership),
      stop_wakeups_(std::move(stop_wakeups)),
      finish_(std::move(finish)),
      deadline_(ctx.loop) {}

void DrainService::begin() {
  begun_ = true;
  ctx_.stopping = true;
  notify_stopping();
  ctx_.snapshot.draining = true;
  stop_wakeups_();
  deadline_.expires_after(std::chrono::milliseconds(ctx_.cfg.daemon.drain_deadline_ms));
  deadline_.async_wait([](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::error(
        "drain deadline passed with batches still running; exiting now (their transactions roll "
        "back, their leases expire after daemon.lease_ttl_ms)");
    std::_Exit(1);
  });
  asio::co_spawn(ctx_.loop, run(), asio::detached);
}

asio::awaitable<void> DrainService::run() {
  co_await scheduler_drained(ctx_);
  // No heartbeat may land after leave(): the others would wait a lease TTL for this node.
  co_await membership_stopped(ctx_, membership_);
  if (ctx_.daemon)
    co_await runtime::on_pool(ctx_.pool, leave_work(ctx_.runtimes(), ctx_.scheduler.workers()));
  finish_(0);
}

}  // namespace rillflow::app
