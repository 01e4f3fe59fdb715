#include "app/status_service.hpp"

#include "app/systemd_notify.hpp"
#include "runtime/on_pool.hpp"

#include <rillflow/tenants/tenant_registry.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace rillflow::app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Built outside the coroutine body (g++ 12 mishandles init-captures of coroutine locals).
struct Read {
  status::StatusSnapshot s;
  std::size_t connections = 0;
};

auto read_work(Store store, std::vector<std::shared_ptr<runtime::Worker>> workers,
               bool schema_due) {
  return [store = std::move(store), workers = std::move(workers), schema_due]() mutable {
    Read out;
    auto& s = out.s;
    try {
      if (schema_due) {
        s.schema_problems = store.schema().drift().problems;
        s.schema_ok = s.schema_problems.empty();
      }
      std::vector<std::string> tenants;  // the schemas workers read: "" (base) or tenants
      for (const auto& worker : workers) {
        status::WorkerView w;
        worker->describe(w);
        w.tenant = worker->tenant();
        if (std::find(tenants.begin(), tenants.end(), w.tenant) == tenants.end())
          tenants.push_back(w.tenant);
        s.workers.push_back(std::move(w));
      }
      // What holds consumers back: one statement per schema, not one per consumer.
      for (const auto& tenant : tenants) {
        const auto schema_store =
            tenant.empty() ? store : store.with_schema(tenant_schema_of(tenant));
        for (auto& blocked : schema_store.projections().blocked_consumers()) {
          for (auto& w : s.workers) {
            if (w.tenant != tenant || w.kind != blocked.kind || w.name != blocked.name) continue;
            if (!w.blocked_by) w.blocked_by = blocked.blocker;  // oldest first
            ++w.blockers;
          }
        }
      }
      s.db_ok = true;
    } catch (const std::exception& e) {
      s.db_ok = false;
      s.db_error = e.what();
      s.db_failure = status::classify_db_failure(e);
    }
    out.connections = store.open_connections();
    return out;
  };
}

}  // namespace

StatusService::StatusService(Context& ctx) : ctx_(ctx), timer_(ctx.loop) {}

void StatusService::start() {
  asio::co_spawn(ctx_.loop, run(), asio::detached);
}

void StatusService::kick() {
  kicked_ = true;
  timer_.cancel();
}

void StatusService::stop() {
  stopped_ = true;
  timer_.cancel();
}

asio::awaitable<void> StatusService::run() {
  while (!stopped_) {
    kicked_ = false;
    co_await refresh();
    if (stopped_) break;
    if (kicked_) continue;
    timer_.expires_after(1s);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> StatusService::refresh() {
  if (!ctx_.store || !ctx_.daemon || ctx_.snapshot.draining) co_return;
  // Schema drift takes a query per relation: every 10 s while current, every refresh while not.
  const bool schema_due =
      !ctx_.snapshot.schema_ok || std::chrono::steady_clock::now() - last_schema_check_ > 10s;
  if (schema_due) last_schema_check_ = std::chrono::steady_clock::now();
  auto workers = ctx_.scheduler.workers();
  auto daemon = ctx_.daemon;
  Read read = co_await runtime::on_pool(ctx_.pool, read_work(*ctx_.store, workers, schema_due));
  if (ctx_.snapshot.draining || daemon != ctx_.daemon) co_return;  // stale
  auto& s = read.s;
  auto& previous = ctx_.snapshot;
  if (!schema_due) {
    s.schema_ok = previous.schema_ok;
    s.schema_problems = previous.schema_problems;
  }
  s.started = previous.started;
  s.draining = previous.draining;
  s.owner = previous.owner;
  s.version = previous.version;
  s.live_nodes = ctx_.live_nodes;
  s.missing_tenants = ctx_.tenants.missing;
  s.refreshed_at = std::chrono::system_clock::now();
  if (!s.db_ok) s.workers = previous.workers;  // keep the last known figures
  // A batch running longer than two lease lifetimes (and a minute) is stuck.
  const auto threshold = std::max<std::chrono::steady_clock::duration>(
      2 * std::chrono::milliseconds(ctx_.cfg.daemon.lease_ttl_ms), std::chrono::minutes(1));
  s.stuck = ctx_.scheduler.running_longer_than(threshold);
  const auto running = ctx_.scheduler.running();
  for (auto& w : s.workers) {
    const runtime::UnitKey key_of_view{w.kind, w.name, w.tenant};
    for (const auto& [key, seconds] : running) {
      if (!(key == key_of_view)) continue;
      w.running = seconds > 0;
      w.running_for_seconds = seconds;
    }
    for (const auto& worker : workers) {
      if (!(worker->key() == key_of_view)) continue;
      w.assigned = worker->assigned();
      w.waiting_reason = w.running ? "processing" : worker->last_outcome();
    }
  }
  if (s.db_ok && !previous.db_ok && ctx_.ready_sent) spdlog::info("database reachable again");
  if (!s.db_ok && previous.db_ok) spdlog::warn("{}", status::unready_reason(s));
  ctx_.snapshot = std::move(s);
  ctx_.metrics.observe(ctx_.snapshot, read.connections);
  if (!ctx_.ready_sent && ctx_.snapshot.db_ok && ctx_.snapshot.started) {
    ctx_.ready_sent = true;
    notify_ready();
    spdlog::info("ready");
  }
}

}  // namespace rillflow::app
