#pragma once
// When workers run. A Worker (runtime/worker.hpp) does one slice of database work at a time on
// the thread pool; the Scheduler (on the loop thread) decides when, so wakeups coalesce and a
// worker never runs twice at once. It does not know worker kinds.

#include "runtime/worker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rillflow::runtime {

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& loop, boost::asio::thread_pool& pool)
      : loop_(loop), pool_(pool) {}

  /// Replaces the workers (loop thread; call while idle(), e.g. after drain for a reload).
  void set_workers(std::vector<std::shared_ptr<Worker>> workers);
  /// Wakes every worker: runs it now, or again right after its current slice (loop thread).
  void wake_all();
  /// Wakes the workers whose index modulo `shares` is `share` (all of them for one share).
  void wake_share(std::size_t share, std::size_t shares);
  /// Wakes the one worker of `key` (no-op when there is none).
  void wake(const UnitKey& key);
  /// Wakes the workers of one tenant ("": the base schema's); false when it has none.
  bool wake_tenant(const std::string& tenant);
  const std::vector<std::shared_ptr<Worker>>& workers() const { return workers_; }
  /// Stops starting slices; `on_idle` runs on the loop thread once none is running.
  void drain(std::function<void()> on_idle);
  /// Starts slices again after a drain.
  void resume();
  bool idle() const;
  /// Names of workers whose current slice has run longer than `threshold`.
  std::vector<std::string> running_longer_than(std::chrono::steady_clock::duration threshold) const;
  /// How long each worker's current slice has been running (0 when not running), by unit key.
  std::vector<std::pair<UnitKey, double>> running() const;
  const std::atomic<bool>& stop_flag() const { return stop_; }

 private:
  struct Entry {
    std::shared_ptr<Worker> worker;
    bool running = false;
    bool pending = false;
    std::chrono::steady_clock::time_point started;
  };
  void start(const std::shared_ptr<Entry>& entry);
  void finished(const std::shared_ptr<Entry>& entry, bool more);
  void wake(const std::shared_ptr<Entry>& entry);

  boost::asio::io_context& loop_;
  boost::asio::thread_pool& pool_;
  std::vector<std::shared_ptr<Entry>> entries_;
  std::vector<std::shared_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  std::function<void()> on_idle_;
};

}  // namespace rillflow::runtime
