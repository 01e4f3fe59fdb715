#include "events/notifier.hpp"

#include "db/sql.hpp"

#include <rillflow/redact.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace rillflow::events {

namespace {

// One notification per schema. The transaction commits without waiting for its WAL flush: a
// notification is delivered at commit either way and is not durable, so waiting would only add
// a disk flush to every wakeup.
constexpr const char* kNotifySql =
    "select pg_notify($1, s) from set_config('synchronous_commit', 'off', true) as c, "
    "jsonb_array_elements_text($2::jsonb) as s";

constexpr std::chrono::milliseconds kFirstRetry{100};
constexpr std::chrono::milliseconds kMaxRetry{5000};

}  // namespace

Notifier::Notifier(std::shared_ptr<db::Pool> pool, std::string channel,
                   std::function<void(std::string_view)> log,
                   std::chrono::microseconds min_interval)
    : pool_(std::move(pool)),
      channel_(std::move(channel)),
      log_(std::move(log)),
      min_interval_(min_interval) {}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Notifier::claim_in_transaction() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (claimed_ || !pending_.empty() || now < next_) return false;
  next_ = now + min_interval_;
  claimed_ = true;
  return true;
}

void Notifier::release_in_transaction() {
  std::lock_guard lock(mutex_);
  claimed_ = false;
}

void Notifier::poke(std::string_view schema) {
  bool idle = false;
  {
    std::lock_guard lock(mutex_);
    idle = pending_.empty();
    if (pending_.find(schema) == pending_.end()) pending_.emplace(schema);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  // While something is pending the thread is sending or waiting out the interval: it will see
  // this schema without being woken (a wakeup per append would cost a context switch each).
  if (idle) wake_.notify_one();
}

void Notifier::run() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(mutex_);
  std::chrono::milliseconds retry = kFirstRetry;
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping with nothing to send
    wake_.wait_until(lock, next_, [&] { return stopping_; });
    std::set<std::string, std::less<>> batch;
    batch.swap(pending_);
    lock.unlock();
    const bool sent = send(batch);
    lock.lock();
    if (sent) {
      retry = kFirstRetry;
      next_ = Clock::now() + min_interval_;
    } else {
      if (stopping_) return;  // one attempt at the end: the consumers poll
      pending_.merge(batch);
      next_ = Clock::now() + retry;
      retry = std::min(retry * 2, kMaxRetry);
    }
  }
}

bool Notifier::send(const std::set<std::string, std::less<>>& schemas) {
  boost::json::array names;
  for (const auto& s : schemas) names.emplace_back(s);
  try {
    db::without_transaction(*pool_, [&](pqxx::nontransaction& txn, db::Connection& conn) {
      db::exec(txn, conn, kNotifySql, channel_, boost::json::serialize(names));
    });
    return true;
  } catch (const std::exception& e) {
    if (log_) {
      log_(
          "NOTIFY on channel '" + channel_ +
          "' failed; consumers see the new events at their next poll: " + redact_secrets(e.what()));
    }
    return false;
  }
}

}  // namespace rillflow::events
