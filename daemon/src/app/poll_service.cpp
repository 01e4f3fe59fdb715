#include "app/poll_service.hpp"

#include "app/systemd_notify.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace rillflow::app {

namespace asio = boost::asio;

PollService::PollService(Context& ctx)
    : ctx_(ctx), poll_timer_(ctx.loop), watchdog_timer_(ctx.loop) {}

void PollService::start_watchdog() {
  if (!watchdog_interval()) return;
  asio::co_spawn(ctx_.loop, watchdog(), asio::detached);
}

void PollService::start_polling() {
  if (polling_) return;
  polling_ = true;
  asio::co_spawn(ctx_.loop, poll(), asio::detached);
}

void PollService::stop_polling() {
  polling_ = false;
  poll_timer_.cancel();
}

void PollService::stop() {
  stopped_ = true;
  stop_polling();
  watchdog_timer_.cancel();
}

// Every worker once per poll interval. Many workers (tenants) are woken in up to ten shares
// spread over the interval, not all at once: a burst of hundreds of slices would queue a
// NOTIFY-woken worker's slice behind them.
asio::awaitable<void> PollService::poll() {
  std::size_t share = 0;
  while (polling_ && !ctx_.snapshot.draining) {
    const std::size_t shares = std::clamp<std::size_t>(ctx_.scheduler.workers().size() / 20, 1, 10);
    poll_timer_.expires_after(std::chrono::milliseconds(ctx_.cfg.daemon.poll_interval_ms) /
                              static_cast<int>(shares));
    boost::system::error_code ec;
    co_await poll_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !polling_ || ctx_.snapshot.draining) break;
    ctx_.metrics.wakeup(false);
    share = (share + 1) % shares;
    ctx_.scheduler.wake_share(share, shares);
  }
}

asio::awaitable<void> PollService::watchdog() {
  const auto interval = watchdog_interval();
  while (!stopped_) {
    notify_watchdog();
    watchdog_timer_.expires_after(*interval);
    boost::system::error_code ec;
    co_await watchdog_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
}

}  // namespace rillflow::app
