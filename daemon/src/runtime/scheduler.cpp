#include "runtime/scheduler.hpp"

#include <boost/asio/post.hpp>

namespace rillflow::runtime {

namespace asio = boost::asio;

void Scheduler::set_workers(std::vector<std::shared_ptr<Worker>> workers) {
  entries_.clear();
  workers_ = workers;
  for (auto& w : workers) {
    auto e = std::make_shared<Entry>();
    e->worker = std::move(w);
    entries_.push_back(std::move(e));
  }
}

void Scheduler::wake(const UnitKey& key) {
  if (stop_) return;
  for (const auto& e : entries_) {
    if (e->worker->key() == key) wake(e);
  }
}

void Scheduler::wake_share(std::size_t share, std::size_t shares) {
  if (stop_ || shares == 0) return;
  for (std::size_t i = share % shares; i < entries_.size(); i += shares) wake(entries_[i]);
}

bool Scheduler::wake_tenant(const std::string& tenant) {
  bool any = false;
  for (const auto& e : entries_) {
    if (e->worker->tenant() != tenant) continue;
    any = true;
    if (!stop_) wake(e);
  }
  return any;
}

void Scheduler::wake(const std::shared_ptr<Entry>& entry) {
  if (entry->running) {
    entry->pending = true;
  } else {
    start(entry);
  }
}

void Scheduler::wake_all() {
  if (stop_) return;
  for (const auto& e : entries_) wake(e);
}

void Scheduler::start(const std::shared_ptr<Entry>& entry) {
  entry->running = true;
  entry->pending = false;
  entry->started = std::chrono::steady_clock::now();
  asio::post(pool_, [this, entry] {
    const bool more = entry->worker->run_slice(stop_);
    asio::post(loop_, [this, entry, more] { finished(entry, more); });
  });
}

void Scheduler::finished(const std::shared_ptr<Entry>& entry, bool more) {
  entry->running = false;
  if (!stop_ && (more || entry->pending)) {
    start(entry);
    return;
  }
  if (stop_ && idle() && on_idle_) {
    auto done = std::move(on_idle_);
    on_idle_ = nullptr;
    done();
  }
}

void Scheduler::drain(std::function<void()> on_idle) {
  stop_ = true;
  if (idle()) {
    on_idle();
  } else {
    on_idle_ = std::move(on_idle);
  }
}

void Scheduler::resume() {
  stop_ = false;
}

bool Scheduler::idle() const {
  for (const auto& e : entries_) {
    if (e->running) return false;
  }
  return true;
}

std::vector<std::string> Scheduler::running_longer_than(
    std::chrono::steady_clock::duration threshold) const {
  std::vector<std::string> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& e : entries_) {
    if (e->running && now - e->started > threshold) out.push_back(e->worker->name());
  }
  return out;
}

std::vector<std::pair<UnitKey, double>> Scheduler::running() const {
  std::vector<std::pair<UnitKey, double>> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& e : entries_) {
    out.emplace_back(e->worker->key(),
                     e->running ? std::chrono::duration<double>(now - e->started).count() : 0.0);
  }
  return out;
}

}  // namespace rillflow::runtime
