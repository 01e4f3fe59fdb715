#include "app/application.hpp"

#include "app/logging.hpp"
#include "app/systemd_notify.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <thread>

namespace rillflow::app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::vector<LoadedProjection> load_registry(const config::Config& cfg) {
  std::vector<LoadedProjection> out;
  for (const auto& p : cfg.projections)
    out.push_back({p, plugin::load_projection_plugin(p.plugin, p.settings)});
  return out;
}

namespace {

std::size_t pool_threads(const config::Config& cfg) {
  return std::min<std::size_t>(64, cfg.projections.size() + 3);
}

}  // namespace

Application::Application(config::Config cfg, std::string config_path)
    : cfg_(std::move(cfg)),
      config_path_(std::move(config_path)),
      pool_(pool_threads(cfg_)),
      signals_(loop_, SIGTERM, SIGINT, SIGHUP),
      poll_timer_(loop_),
      refresh_timer_(loop_),
      watchdog_timer_(loop_),
      drain_timer_(loop_),
      metrics_(rillflow::version()),
      scheduler_(loop_, pool_),
      owner_(ProjectionDaemon::new_owner_id()) {
  snapshot_.owner = owner_;
  snapshot_.version = rillflow::version();
}

Application::~Application() {
  if (listener_) listener_->stop();
  pool_.join();
}

int Application::run() {
  registry_ = load_registry(cfg_);  // a missing plugin stops the start, with its message
  listen_url_ = config::resolve_listen_url(cfg_.database);
  if (auto url = config::resolve_database_url(cfg_.database)) {
    url_ = *url;
  } else {
    embedded_ = EmbeddedPostgres::start();
    url_ = embedded_->url();
    spdlog::info("no database URL configured (${} unset): started an embedded PostgreSQL in {}",
                 cfg_.database.url_env, embedded_->directory().string());
  }
  http_ = std::make_unique<http::HttpServer>(
      loop_, cfg_.http.bind, static_cast<unsigned short>(cfg_.http.port),
      [this](std::string_view method, std::string_view target) {
        return http::route(method, target, snapshot_, [this] { return metrics_.render(); });
      });
  spdlog::info("rillflowd {} serving HTTP on {}:{} (owner {}), {} projection(s)",
               rillflow::version(), cfg_.http.bind, http_->port(), owner_, registry_.size());
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (!ec) on_signal(signal);
  });
  schedule_watchdog();
  schedule_refresh();
  connect();
  loop_.run();
  return exit_code_;
}

// Opens the store (retrying while the database is down) and migrates the schema, on the pool.
void Application::connect() {
  asio::post(pool_, [this] {
    std::chrono::milliseconds backoff = 200ms;
    while (!stopping_) {
      try {
        auto store =
            Store::builder(url_)
                .schema(cfg_.schema)
                .max_connections(static_cast<std::size_t>(cfg_.database.max_connections))
                .notify_channel(cfg_.daemon.notify_channel)
                .application_name("rillflowd")
                .prepared_statements(*parse_prepared_statements(cfg_.database.prepared_statements))
                .log_sink([](std::string_view message) { spdlog::warn("{}", message); })
                .build();
        try {
          const auto applied = store.schema().sync();
          if (!applied.empty())
            spdlog::info("applied {} schema migration(s) to '{}'", applied.size(), cfg_.schema);
        } catch (const Error& e) {
          spdlog::error(
              "cannot migrate schema '{}': {} (run `rillflow schema-sync` with a privileged role)",
              cfg_.schema, e.what());
        }
        asio::post(loop_, [this, store] { on_connected(store); });
        return;
      } catch (const Error& e) {
        const std::string why = e.what();
        asio::post(loop_, [this, why, kind = classify_db_failure(e)] {
          snapshot_.db_ok = false;
          snapshot_.db_error = why;
          snapshot_.db_failure = kind;
        });
        spdlog::warn("database not reachable yet: {}; retrying in {} ms", why, backoff.count());
        for (auto slept = 0ms; slept < backoff && !stopping_; slept += 50ms)
          std::this_thread::sleep_for(50ms);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5000ms);
      }
    }
  });
}

void Application::on_connected(Store store) {
  if (snapshot_.draining) return;
  store_ = std::move(store);
  build_workers();
  snapshot_.started = true;
  if (cfg_.daemon.notify && !listen_url_ && store_->behind_pooler()) {
    // LISTEN is session state: through a transaction pooler it lands on a server session that
    // goes back to the pool, and the notifications go nowhere.
    spdlog::warn(
        "the database URL goes through a connection pooler ({}): LISTEN needs a session of its "
        "own, so NOTIFY wakeups are off and workers poll every {} ms; set "
        "database.listen_url_env or database.listen_url_file to a direct PostgreSQL URL for "
        "wakeups",
        store_->describe_target(), cfg_.daemon.poll_interval_ms);
  } else if (cfg_.daemon.notify) {
    listener_ = std::make_shared<listen::NotifyListener>(
        loop_, pool_, listen_url_.value_or(url_), cfg_.daemon.notify_channel, cfg_.schema, [this] {
          metrics_.wakeup(true);
          scheduler_.wake_all();
        });
    listener_->start();
  }
  schedule_poll();
  scheduler_.wake_all();
  refresh_status();
}

void Application::build_workers() {
  auto builder = ProjectionDaemon::builder(*store_).owner_id(owner_).lease_ttl(
      std::chrono::milliseconds(cfg_.daemon.lease_ttl_ms));
  for (const auto& p : registry_)
    builder.register_projection(p.config.name, p.handler, p.config.options());
  daemon_ = std::make_shared<ProjectionDaemon>(builder.build());
  workers_.clear();
  std::vector<std::shared_ptr<projection::Worker>> workers;
  for (const auto& p : registry_) {
    workers_.push_back(
        std::make_shared<projection::ProjectionWorker>(daemon_, p.config.name, metrics_));
    workers.push_back(workers_.back());
  }
  scheduler_.set_workers(std::move(workers));
}

void Application::schedule_poll() {
  poll_timer_.expires_after(std::chrono::milliseconds(cfg_.daemon.poll_interval_ms));
  poll_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || snapshot_.draining) return;
    metrics_.wakeup(false);
    scheduler_.wake_all();
    schedule_poll();
  });
}

void Application::schedule_refresh() {
  refresh_timer_.expires_after(1s);
  refresh_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    refresh_status();
    schedule_refresh();
  });
}

void Application::schedule_watchdog() {
  const auto interval = watchdog_interval();
  if (!interval) return;
  notify_watchdog();
  watchdog_timer_.expires_after(*interval);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) schedule_watchdog();
  });
}

// Reads status, lag and DLQ figures and checks database and schema on the pool; the loop gets a
// finished snapshot, so HTTP never waits for the database.
void Application::refresh_status() {
  // Not while draining: a heartbeat after leave() would make the others wait a lease TTL.
  if (refreshing_ || !store_ || !daemon_ || snapshot_.draining) return;
  refreshing_ = true;
  const bool prune_due = std::chrono::steady_clock::now() - last_prune_ > std::chrono::minutes(1);
  if (prune_due) last_prune_ = std::chrono::steady_clock::now();
  // Schema drift takes a query per relation: every 10 s while current, every refresh while not.
  const bool schema_due =
      !snapshot_.schema_ok ||
      std::chrono::steady_clock::now() - last_schema_check_ > std::chrono::seconds(10);
  if (schema_due) last_schema_check_ = std::chrono::steady_clock::now();
  asio::post(pool_, [this, store = *store_, daemon = daemon_, names = daemon_->registered(),
                     prune_due, schema_due] {
    StatusSnapshot s;
    std::vector<std::string> mine;
    try {
      s.live_nodes = daemon->heartbeat();
      if (prune_due) daemon->prune_ticks();
      mine = daemon->assignment(s.live_nodes);
      if (schema_due) {
        s.schema_problems = store.schema().drift().problems;
        s.schema_ok = s.schema_problems.empty();
      }
      for (const auto& name : names) {
        WorkerView w;
        w.name = name;
        w.status = daemon->status(name);
        w.metrics = daemon->metrics(name);
        w.owned = w.status && w.status->lease_owner == owner_;
        s.workers.push_back(std::move(w));
      }
      s.db_ok = true;
    } catch (const std::exception& e) {
      s.db_ok = false;
      s.db_error = e.what();
      s.db_failure = classify_db_failure(e);
    }
    const auto connections = store.open_connections();
    asio::post(loop_, [this, s = std::move(s), connections, mine = std::move(mine), daemon,
                       schema_due]() mutable {
      refreshing_ = false;
      if (!schema_due) {
        s.schema_ok = snapshot_.schema_ok;
        s.schema_problems = snapshot_.schema_problems;
      }
      if (s.db_ok && daemon == daemon_) {
        bool gained = false;
        for (const auto& worker : workers_) {
          const bool assigned = std::find(mine.begin(), mine.end(), worker->name()) != mine.end();
          gained = gained || (assigned && !worker->assigned());
          worker->set_assigned(assigned);
        }
        if (gained) scheduler_.wake_all();
      }
      s.started = snapshot_.started;
      s.draining = snapshot_.draining;
      s.owner = snapshot_.owner;
      s.version = snapshot_.version;
      s.refreshed_at = std::chrono::system_clock::now();
      if (!s.db_ok) s.workers = snapshot_.workers;  // keep the last known figures
      // A batch running longer than two lease lifetimes (and a minute) is stuck.
      const auto threshold = std::max<std::chrono::steady_clock::duration>(
          2 * std::chrono::milliseconds(cfg_.daemon.lease_ttl_ms), std::chrono::minutes(1));
      s.stuck = scheduler_.running_longer_than(threshold);
      const auto running = scheduler_.running();
      for (auto& w : s.workers) {
        for (const auto& [name, seconds] : running) {
          if (name != w.name) continue;
          w.running = seconds > 0;
          w.running_for_seconds = seconds;
        }
        for (const auto& worker : workers_) {
          if (worker->name() == w.name)
            w.waiting_reason = w.running ? "processing" : worker->last_outcome();
        }
      }
      if (s.db_ok && !snapshot_.db_ok && ready_sent_) spdlog::info("database reachable again");
      if (!s.db_ok && snapshot_.db_ok) spdlog::warn("{}", unready_reason(s));
      snapshot_ = std::move(s);
      metrics_.observe(snapshot_, connections);
      if (!ready_sent_ && snapshot_.db_ok && snapshot_.started) {
        ready_sent_ = true;
        notify_ready();
        spdlog::info("ready");
      }
    });
  });
}

void Application::on_signal(int signal) {
  signals_.async_wait([this](const boost::system::error_code& ec, int next) {
    if (!ec) on_signal(next);
  });
  if (signal == SIGHUP) {
    reload();
    return;
  }
  if (++stop_signals_ > 1) {
    spdlog::warn("second stop signal: exiting at once");
    std::_Exit(1);
  }
  spdlog::info("{} received: draining (deadline {} ms)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               cfg_.daemon.drain_deadline_ms);
  begin_drain();
}

void Application::begin_drain() {
  stopping_ = true;
  notify_stopping();
  snapshot_.draining = true;
  poll_timer_.cancel();
  if (listener_) listener_->stop();
  drain_timer_.expires_after(std::chrono::milliseconds(cfg_.daemon.drain_deadline_ms));
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::error(
        "drain deadline passed with batches still running; exiting now (their transactions roll "
        "back, "
        "their leases expire after daemon.lease_ttl_ms)");
    std::_Exit(1);
  });
  scheduler_.drain([this] {
    if (!daemon_) {
      finish(0);
      return;
    }
    asio::post(pool_, [this, daemon = daemon_] {
      try {
        daemon->release_leases();
        daemon->leave();
        spdlog::info("leases released");
      } catch (const std::exception& e) {
        spdlog::warn("could not release leases: {} (they expire after daemon.lease_ttl_ms)",
                     e.what());
      }
      asio::post(loop_, [this] { finish(0); });
    });
  });
}

void Application::finish(int code) {
  exit_code_ = code;
  drain_timer_.cancel();
  refresh_timer_.cancel();
  watchdog_timer_.cancel();
  signals_.clear();  // default dispositions again: a signal during the final cleanup ends it
  if (http_) http_->stop();
  if (code == 0) spdlog::info("drained; bye");
  loop_.stop();
}

// SIGHUP: validate the whole new config (and load its plugins) off the loop; apply it, or keep
// the current one and say why.
void Application::reload() {
  if (reloading_ || snapshot_.draining) return;
  reloading_ = true;
  notify_reloading();
  spdlog::info("SIGHUP: reloading {}", config_path_);
  asio::post(pool_, [this] {
    std::optional<config::Config> next;
    std::vector<LoadedProjection> registry;
    std::string error;
    try {
      next = config::load(config_path_);
      registry = load_registry(*next);
    } catch (const std::exception& e) {
      error = e.what();
    }
    asio::post(loop_, [this, next = std::move(next), registry = std::move(registry),
                       error]() mutable {
      if (!error.empty()) {
        spdlog::error("reload failed, keeping the current configuration: {}", error);
        reloading_ = false;
        notify_ready();
        return;
      }
      if (next->database.url_env != cfg_.database.url_env ||
          next->database.url_file != cfg_.database.url_file ||
          next->database.max_connections != cfg_.database.max_connections ||
          next->database.prepared_statements != cfg_.database.prepared_statements ||
          next->database.listen_url_env != cfg_.database.listen_url_env ||
          next->database.listen_url_file != cfg_.database.listen_url_file ||
          next->schema != cfg_.schema || next->http.bind != cfg_.http.bind ||
          next->http.port != cfg_.http.port || next->logging.format != cfg_.logging.format ||
          next->daemon.notify != cfg_.daemon.notify ||
          next->daemon.notify_channel != cfg_.daemon.notify_channel ||
          next->daemon.lease_ttl_ms != cfg_.daemon.lease_ttl_ms ||
          next->daemon.drain_deadline_ms != cfg_.daemon.drain_deadline_ms) {
        spdlog::warn(
            "reload: database, schema, http, logging.format and daemon settings other than "
            "poll_interval_ms need a restart; those changes are ignored");
      }
      set_log_level(next->logging.level);
      cfg_.logging.level = next->logging.level;
      cfg_.daemon.poll_interval_ms = next->daemon.poll_interval_ms;
      cfg_.projections = next->projections;
      auto apply = [this, registry = std::move(registry)]() mutable {
        registry_ = std::move(registry);
        if (store_) {
          auto old = daemon_;
          asio::post(pool_, [this, old] {
            try {
              if (old) old->release_leases();
            } catch (const std::exception& e) {
              spdlog::warn("reload: could not release the old leases: {} (they expire)", e.what());
            }
            asio::post(loop_, [this] {
              reloading_ = false;
              if (snapshot_.draining) return;  // a SIGTERM arrived meanwhile: stay drained
              build_workers();
              scheduler_.resume();
              scheduler_.wake_all();
              notify_ready();
              spdlog::info("reloaded: {} projection(s)", registry_.size());
              refresh_status();
            });
          });
        } else {
          scheduler_.resume();
          reloading_ = false;
          notify_ready();
        }
      };
      scheduler_.drain(std::move(apply));
    });
  });
}

}  // namespace rillflow::app
