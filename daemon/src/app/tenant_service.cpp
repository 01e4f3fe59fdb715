#include "app/tenant_service.hpp"

#include "app/reload_service.hpp"
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

// Built outside the coroutine body (g++ 12 mishandles captures of coroutine locals).
auto resolve_work(Store base, config::TenantsConfig cfg) {
  return [base = std::move(base), cfg = std::move(cfg)] { return resolve_tenants(base, cfg); };
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// Names in `a` and not in `b` (both sorted).
std::vector<std::string> minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

asio::awaitable<TenantSet> read_tenants(Context& ctx) {
  if (!ctx.cfg.tenants.enabled || !ctx.store) co_return TenantSet{};
  co_return co_await runtime::on_pool(ctx.pool, resolve_work(*ctx.store, ctx.cfg.tenants));
}

TenantService::TenantService(Context& ctx, std::function<void()> on_changed)
    : ctx_(ctx), on_changed_(std::move(on_changed)), timer_(ctx.loop) {}

void TenantService::start() {
  asio::co_spawn(ctx_.loop, run(), asio::detached);
}

void TenantService::stop() {
  stopped_ = true;
  timer_.cancel();
}

asio::awaitable<void> TenantService::run() {
  while (!stopped_) {
    co_await round();
    if (stopped_) break;
    timer_.expires_after(std::chrono::milliseconds(ctx_.cfg.daemon.poll_interval_ms));
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> TenantService::round() {
  if (!ctx_.cfg.tenants.enabled || !ctx_.store || ctx_.reloading || ctx_.snapshot.draining)
    co_return;
  TenantSet next;
  try {
    next = co_await read_tenants(ctx_);
  } catch (const std::exception& e) {
    spdlog::debug("tenants: {}", e.what());  // the status service reports the database
    co_return;
  }
  if (ctx_.reloading || ctx_.snapshot.draining || !ctx_.cfg.tenants.enabled) co_return;
  if (next.missing != ctx_.tenants.missing && !next.missing.empty()) {
    spdlog::warn("tenants: {} listed but not provisioned (rillflow tenants ensure NAME)",
                 joined(next.missing));
  }
  if (next.active == ctx_.tenants.active) {
    ctx_.tenants.missing = std::move(next.missing);
    co_return;
  }
  spdlog::info("tenants: starting {}, stopping {}", joined(minus(next.active, ctx_.tenants.active)),
               joined(minus(ctx_.tenants.active, next.active)));
  ctx_.reloading = true;
  co_await switch_tenants(ctx_, std::move(next));
  ctx_.reloading = false;
  if (on_changed_ && !ctx_.snapshot.draining) on_changed_();
}

}  // namespace rillflow::app
