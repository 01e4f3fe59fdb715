#pragma once
// Sends the store's NOTIFY after appends commit, from a thread of its own. Private to core.
//
// An appending transaction used to NOTIFY itself. PostgreSQL serialises the commits of
// notifying transactions on one cluster-wide lock held through the commit (and its WAL flush),
// so at 16 writers appends with NOTIFY ran at 0.84 of those without on a cluster with fsync off
// and 0.40 on a durable one. Here an append that committed only marks its schema as pending
// (poke); the notifier thread sends one NOTIFY per pending schema in a transaction of its own,
// at once when idle and otherwise at most once per kMinInterval, so a burst of commits costs one
// notification and appends never take that lock. A listener is woken after the commit, as
// before; a lost notification (the notifier's connection broke) only delays consumers to their
// next poll, which they do anyway (rillflow/events/notify.hpp).

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
  /// The least time between two NOTIFY transactions of one notifier (under a stream of commits).
  static constexpr std::chrono::microseconds kMinInterval{1000};

  /// Sends on `channel` through `pool`. `log` (may be empty) hears about failed sends.
  Notifier(std::shared_ptr<db::Pool> pool, std::string channel,
           std::function<void(std::string_view)> log);
  /// Sends what is still pending (one attempt), then stops the thread.
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// An append to `schema` committed: its consumers are to be notified. Never blocks on the
  /// database; starts the thread on first use.
  void poke(std::string_view schema);

 private:
  void run();
  /// One transaction notifying every schema in `schemas`; false (after logging) if it failed.
  bool send(const std::set<std::string, std::less<>>& schemas);

  const std::shared_ptr<db::Pool> pool_;
  const std::string channel_;
  const std::function<void(std::string_view)> log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::set<std::string, std::less<>> pending_;  // schemas whose consumers are to be woken
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rillflow::events
