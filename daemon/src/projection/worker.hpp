#pragma once
// Leased workers and their scheduling. A Worker does one slice of database work at a time on
// the thread pool; the Scheduler (on the loop thread) decides when, so wakeups coalesce and a
// worker never runs twice at once. Projection workers are one kind; subscription and
// snapshotter workers plug in the same way.

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rillflow::projection {

class Worker {
 public:
  virtual ~Worker() = default;
  virtual const std::string& name() const = 0;
  virtual const char* kind() const = 0;
  /// Runs a bounded amount of work (a few batches). Returns true when more work is waiting.
  /// Must not throw; checks `stop` between batches.
  virtual bool run_slice(const std::atomic<bool>& stop) = 0;
};

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& loop, boost::asio::thread_pool& pool)
      : loop_(loop), pool_(pool) {}

  /// Replaces the workers (loop thread; call while idle(), e.g. after drain for a reload).
  void set_workers(std::vector<std::shared_ptr<Worker>> workers);
  /// Wakes every worker: runs it now, or again right after its current slice (loop thread).
  void wake_all();
  /// Stops starting slices; `on_idle` runs on the loop thread once none is running.
  void drain(std::function<void()> on_idle);
  /// Starts slices again after a drain.
  void resume();
  bool idle() const;
  /// Names of workers whose current slice has run longer than `threshold`.
  std::vector<std::string> running_longer_than(std::chrono::steady_clock::duration threshold) const;
  /// How long each worker's current slice has been running (0 when not running), by name.
  std::vector<std::pair<std::string, double>> running() const;
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

  boost::asio::io_context& loop_;
  boost::asio::thread_pool& pool_;
  std::vector<std::shared_ptr<Entry>> entries_;
  std::atomic<bool> stop_{false};
  std::function<void()> on_idle_;
};

}  // namespace rillflow::projection
