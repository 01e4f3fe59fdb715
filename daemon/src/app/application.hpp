#pragma once
// rillflowd's composition root: one Asio loop owning the signals, timers, HTTP server, LISTEN
// connection and the scheduling of workers; database work runs on a thread pool. The long-lived
// parts are services (connect, membership, status, reload, drain, poll), each a coroutine started
// with co_spawn in its own file; what is left here is the order they start in and the order they
// drain in (docs/daemon.md, docs/architecture.md).

#include "app/context.hpp"
#include "app/drain_service.hpp"
#include "app/membership_service.hpp"
#include "app/poll_service.hpp"
#include "app/reload_service.hpp"
#include "app/status_service.hpp"
#include "app/tenant_service.hpp"
#include "http/http_server.hpp"
#include "listen/notify_listener.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>

#include <memory>
#include <optional>
#include <string>

namespace rillflow::app {

class Application {
 public:
  /// `config_path` is what SIGHUP re-reads (empty: nothing to reload, the reload fails).
  /// `database_url`, when given, is used instead of the config's database.url_env/url_file
  /// (`rillflow projections run-loop --database-url`).
  Application(config::Config cfg, std::string config_path,
              std::optional<std::string> database_url = std::nullopt);
  ~Application();
  /// Runs until drained; returns the exit code.
  int run();

 private:
  boost::asio::awaitable<void> start();
  void on_signal(int signal);
  void on_notify(const std::vector<std::string>& schemas);
  void stop_wakeups();
  void finish(int code);

  Context ctx_;
  boost::asio::signal_set signals_;
  std::unique_ptr<http::HttpServer> http_;
  std::shared_ptr<listen::NotifyListener> listener_;
  PollService poll_;
  StatusService status_;
  MembershipService membership_;
  ReloadService reload_;
  DrainService drain_;
  TenantService tenants_;
  int stop_signals_ = 0;
  std::optional<std::string> database_url_;
  int exit_code_ = 0;
};

}  // namespace rillflow::app
