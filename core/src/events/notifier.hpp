#pragma once
// Sends the store's NOTIFY after appends commit, from a thread of its own. Private to core.
//
// PostgreSQL serialises the commits of notifying transactions on one cluster-wide lock held
// through the commit (and its WAL flush). When every appending transaction NOTIFYs, appends at
// 16 writers ran at 0.84 of those without NOTIFY on a cluster with fsync off and 0.40 on a
// durable one. So a store lets one append per kMinInterval NOTIFY in its own transaction
// (claim_in_transaction: an idle store's wakeup costs nothing extra and arrives at commit), and
// every other append that commits only marks its schema as pending (poke); this thread then
// sends one NOTIFY per pending schema in a transaction of its own, no sooner than kMinInterval
// after the previous NOTIFY of either kind. A burst of commits costs about one notification
// per millisecond, and no two appends of a store wait on each other for that lock. A listener
// is always woken after the commit; a lost notification (the notifier's connection broke) only
// delays consumers to their next poll, which they do anyway (rillflow/events/notify.hpp).

#include "db/pool.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

namespace rillflow::events {

class Notifier {
 public:
  /// The least time between two NOTIFYs of one store (under a stream of commits).
  static constexpr std::chrono::microseconds kMinInterval{1000};

  /// Sends on `channel` through `pool`. `log` (may be empty) hears about failed sends.
  Notifier(std::shared_ptr<db::Pool> pool, std::string channel,
           std::function<void(std::string_view)> log,
           std::chrono::microseconds min_interval = kMinInterval);
  /// Sends what is still pending (one attempt), then stops the thread.
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// Before an appending transaction: true (and the interval restarts) when it may NOTIFY
  /// itself: no other transaction holds that claim, nothing is pending and the last NOTIFY is
  /// min_interval old. One at a time, so appends never queue behind each other for the lock.
  bool claim_in_transaction();
  /// The claimed transaction ended (committed or not).
  void release_in_transaction();
  /// An append to `schema` that did not NOTIFY itself committed: its consumers are to be
  /// notified. Never blocks on the database; starts the thread on first use.
  void poke(std::string_view schema);

 private:
  void run();
  /// One transaction notifying every schema in `schemas`; false (after logging) if it failed.
  bool send(const std::set<std::string, std::less<>>& schemas);

  const std::shared_ptr<db::Pool> pool_;
  const std::string channel_;
  const std::function<void(std::string_view)> log_;
  const std::chrono::microseconds min_interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::set<std::string, std::less<>> pending_;    // schemas whose consumers are to be woken
  std::chrono::steady_clock::time_point next_{};  // the earliest time of the next NOTIFY
  bool claimed_ = false;                          // a transaction NOTIFYs itself
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rillflow::events
