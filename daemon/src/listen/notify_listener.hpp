#pragma once
// The dedicated LISTEN connection: its socket sits in the Asio loop as a stream_descriptor, so a
// NOTIFY from an append wakes the workers at once. Reconnects with backoff; after every
// (re)connect it reports a wakeup so workers catch up on what was sent while it was away.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

typedef struct pg_conn PGconn;

namespace rillflow::listen {

class NotifyListener : public std::enable_shared_from_this<NotifyListener> {
 public:
  /// What woke it: the schemas named by the notifications read at once (their payloads,
  /// distinct), or none after a (re)connect, when every consumer should look.
  using Wakeup = std::function<void(const std::vector<std::string>& schemas)>;
  /// `on_wakeup` runs on the loop thread. Connecting (blocking) happens on `pool`.
  NotifyListener(boost::asio::io_context& loop, boost::asio::thread_pool& pool, std::string url,
                 std::string channel, Wakeup on_wakeup);
  ~NotifyListener();

  void start();
  void stop();
  bool connected() const { return conn_ != nullptr; }

 private:
  void connect();
  void attach(PGconn* conn);
  void wait();
  void on_readable();
  void drop_and_retry(const std::string& why);

  boost::asio::io_context& loop_;
  boost::asio::thread_pool& pool_;
  std::string url_, channel_;
  Wakeup on_wakeup_;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::milliseconds backoff_{100};
  PGconn* conn_ = nullptr;
  bool stopped_ = false;
  bool warned_pooled_ = false;
};

}  // namespace rillflow::listen
