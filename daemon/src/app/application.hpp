#pragma once
// rillflowd's composition: one Asio loop owning the signals, timers, HTTP server, LISTEN
// connection and the scheduling of workers; database work runs on a thread pool. Services are
// started in order and drained in reverse (docs/daemon.md).

#include "app/status.hpp"
#include "config/config.hpp"
#include "http/http_server.hpp"
#include "listen/notify_listener.hpp"
#include "metrics/daemon_metrics.hpp"
#include "plugin/plugin_loader.hpp"
#include "projection/projection_worker.hpp"

#include <rillflow/rillflow.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rillflow::app {

/// A projection of the registry with its loaded plugin.
struct LoadedProjection {
  config::ProjectionConfig config;
  std::shared_ptr<plugin::PluginHandler> handler;
};

/// Loads every plugin of the registry; throws PluginError for the first that fails.
std::vector<LoadedProjection> load_registry(const config::Config& cfg);

class Application {
 public:
  Application(config::Config cfg, std::string config_path);
  ~Application();
  /// Runs until drained; returns the exit code.
  int run();

 private:
  void connect();
  void on_connected(Store store);
  void build_workers();
  void schedule_poll();
  void schedule_refresh();
  void schedule_watchdog();
  void refresh_status();
  void on_signal(int signal);
  void begin_drain();
  void finish(int code);
  void reload();

  config::Config cfg_;
  std::string config_path_;
  boost::asio::io_context loop_;
  boost::asio::thread_pool pool_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer poll_timer_, refresh_timer_, watchdog_timer_, drain_timer_;
  metrics::DaemonMetrics metrics_;
  projection::Scheduler scheduler_;
  std::vector<LoadedProjection> registry_;
  std::optional<EmbeddedPostgres> embedded_;
  std::string url_;
  std::optional<std::string> listen_url_;  ///< database.listen_url_*: a direct URL for LISTEN
  std::optional<Store> store_;
  std::string owner_;
  std::shared_ptr<ProjectionDaemon> daemon_;
  std::vector<std::shared_ptr<projection::ProjectionWorker>> workers_;
  std::unique_ptr<http::HttpServer> http_;
  std::shared_ptr<listen::NotifyListener> listener_;
  StatusSnapshot snapshot_;  // loop thread only
  bool refreshing_ = false;
  std::atomic<bool> stopping_{false};  ///< SIGTERM: the connect loop gives up
  std::chrono::steady_clock::time_point last_prune_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_schema_check_{};
  bool reloading_ = false;
  bool ready_sent_ = false;
  int stop_signals_ = 0;
  int exit_code_ = 0;
};

}  // namespace rillflow::app
