#pragma once
// Status: every second, reads each worker's stored state and figures (Worker::describe) and the
// schema drift on the pool, and publishes a finished snapshot on the loop, so /health/ready,
// /status and /metrics never wait for the database. It only reports: what this node runs is the
// membership service's decision (Worker::assigned), shown here as it stands.

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace rillflow::app {

class StatusService {
 public:
  explicit StatusService(Context& ctx);
  void start();
  /// Refreshes now (after a connect, a membership round or a reload).
  void kick();
  void stop();

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> refresh();

  Context& ctx_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  bool kicked_ = false;
  std::chrono::steady_clock::time_point last_schema_check_{};
};

}  // namespace rillflow::app
