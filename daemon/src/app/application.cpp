#include "app/application.hpp"

#include "app/connect_service.hpp"

#include <rillflow/events/notify.hpp>
#include <rillflow/tenants/tenant_registry.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <csignal>
#include <cstdlib>

namespace rillflow::app {

namespace asio = boost::asio;

Application::Application(config::Config cfg, std::string config_path,
                         std::optional<std::string> database_url)
    : ctx_(std::move(cfg), std::move(config_path)),
      signals_(ctx_.loop, SIGTERM, SIGINT, SIGHUP),
      poll_(ctx_),
      status_(ctx_),
      membership_(ctx_, [this] { status_.kick(); }),
      reload_(ctx_,
              [this] {
                membership_.kick();
                status_.kick();
              }),
      drain_(
          ctx_, membership_, [this] { stop_wakeups(); }, [this](int code) { finish(code); }),
      tenants_(ctx_,
               [this] {
                 membership_.kick();
                 status_.kick();
               }),
      database_url_(std::move(database_url)) {}

Application::~Application() {
  if (listener_) listener_->stop();
  ctx_.pool.join();
}

// Start order: plugins, database URL (or an embedded PostgreSQL), HTTP, signals, watchdog and
// status; then, on the loop, connect -> workers -> LISTEN and polling -> membership.
int Application::run() {
  ctx_.registry = load_registry(ctx_.cfg);  // a missing plugin stops the start, with its message
  ctx_.snapshotters = load_snapshotters(ctx_.cfg);    // so does a missing folder plugin
  ctx_.subscriptions = load_subscriptions(ctx_.cfg);  // and a missing subscription plugin
  ctx_.listen_url = config::resolve_listen_url(ctx_.cfg.database);
  if (auto url = database_url_ ? database_url_ : config::resolve_database_url(ctx_.cfg.database)) {
    ctx_.url = *url;
  } else {
    ctx_.embedded = EmbeddedPostgres::start();
    ctx_.url = ctx_.embedded->url();
    spdlog::info("no database URL configured (${} unset): started an embedded PostgreSQL in {}",
                 ctx_.cfg.database.url_env, ctx_.embedded->directory().string());
  }
  http_ = std::make_unique<http::HttpServer>(
      ctx_.loop, ctx_.cfg.http.bind, static_cast<unsigned short>(ctx_.cfg.http.port),
      [this](std::string_view method, std::string_view target) {
        return http::route(method, target, ctx_.snapshot, [this] { return ctx_.metrics.render(); });
      });
  spdlog::info("rillflowd {} serving HTTP on {}:{} (owner {}), {} projection(s), {} snapshotter(s)",
               rillflow::version(), ctx_.cfg.http.bind, http_->port(), ctx_.owner,
               ctx_.registry.size(), ctx_.snapshotters.size());
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (!ec) on_signal(signal);
  });
  poll_.start_watchdog();
  status_.start();
  asio::co_spawn(ctx_.loop, start(), asio::detached);
  ctx_.loop.run();
  return exit_code_;
}

asio::awaitable<void> Application::start() {
  auto store = co_await connect(ctx_);
  if (!store || ctx_.snapshot.draining) co_return;
  ctx_.store = std::move(*store);
  try {
    ctx_.tenants = co_await read_tenants(ctx_);
  } catch (const std::exception& e) {
    spdlog::error("cannot read the tenant registry ({}); tenants start once it can be read",
                  e.what());
  }
  ctx_.build_workers();
  ctx_.snapshot.started = true;
  const auto& cfg = ctx_.cfg;
  if (cfg.daemon.notify && !ctx_.listen_url && ctx_.store->behind_pooler()) {
    // LISTEN is session state: through a transaction pooler it lands on a server session that
    // goes back to the pool, and the notifications go nowhere.
    spdlog::warn(
        "the database URL goes through a connection pooler ({}): LISTEN needs a session of its "
        "own, so NOTIFY wakeups are off and workers poll every {} ms; set "
        "database.listen_url_env or database.listen_url_file to a direct PostgreSQL URL for "
        "wakeups",
        ctx_.store->describe_target(), cfg.daemon.poll_interval_ms);
  } else if (cfg.daemon.notify) {
    listener_ = std::make_shared<listen::NotifyListener>(
        ctx_.loop, ctx_.pool, ctx_.listen_url.value_or(ctx_.url), cfg.daemon.notify_channel,
        [this](const std::vector<std::string>& schemas) { on_notify(schemas); });
    listener_->start();
  }
  poll_.start_polling();
  ctx_.scheduler.wake_all();
  membership_.start();  // its first round assigns the work and kicks the status refresh
  tenants_.start();
}

// A NOTIFY's payload names the schema appended to: only the workers of that schema wake (the
// base schema's, or one tenant's; other schemas sharing the channel are not ours).
void Application::on_notify(const std::vector<std::string>& schemas) {
  if (schemas.empty()) {
    ctx_.scheduler.wake_all();
    return;
  }
  bool ours = false;
  for (const auto& schema : schemas) {
    std::optional<std::string> tenant;
    if (!ctx_.cfg.tenants.enabled) {
      if (notify::concerns(schema, ctx_.cfg.schema)) tenant = "";
    } else if (schema.starts_with(kTenantSchemaPrefix)) {
      tenant = schema.substr(kTenantSchemaPrefix.size());
    }
    if (tenant && ctx_.scheduler.wake_tenant(*tenant)) ours = true;
  }
  if (ours) ctx_.metrics.wakeup(true);
}

void Application::on_signal(int signal) {
  signals_.async_wait([this](const boost::system::error_code& ec, int next) {
    if (!ec) on_signal(next);
  });
  if (signal == SIGHUP) {
    reload_.on_sighup();
    return;
  }
  if (++stop_signals_ > 1) {
    spdlog::warn("second stop signal: exiting at once");
    std::_Exit(1);
  }
  spdlog::info("{} received: draining (deadline {} ms)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               ctx_.cfg.daemon.drain_deadline_ms);
  drain_.begin();
}

void Application::stop_wakeups() {
  poll_.stop_polling();
  tenants_.stop();
  if (listener_) listener_->stop();
}

// Drain order (DrainService): wakeups, slices, membership, leases; then here: timers, signals,
// HTTP, the loop.
void Application::finish(int code) {
  exit_code_ = code;
  drain_.cancel_deadline();
  status_.stop();
  poll_.stop();
  signals_.clear();  // default dispositions again: a signal during the final cleanup ends it
  if (http_) http_->stop();
  if (code == 0) spdlog::info("drained; bye");
  ctx_.loop.stop();
}

}  // namespace rillflow::app
