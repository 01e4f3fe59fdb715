// rillflowd's runtime without a database: the scheduler, the membership assignment applied to
// workers of any kind, retry delays as the config sets them, and the reload diff.
#include "app/membership_service.hpp"
#include "config/config.hpp"
#include "runtime/retry.hpp"
#include "runtime/scheduler.hpp"

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>

using namespace rillflow;

namespace {

// A worker whose slices block until the test releases them, so the test decides what overlaps.
class GatedWorker final : public runtime::Worker {
 public:
  GatedWorker(std::string kind, std::string name) : Worker({std::move(kind), std::move(name)}) {}
  bool run_slice(const std::atomic<bool>&) override {
    std::unique_lock lock(mutex_);
    ++running_;
    max_running_ = std::max(max_running_, running_);
    ++started_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_ > 0; });
    --released_;
    --running_;
    return more_;
  }
  void describe(status::WorkerView& view) const override { view.name = name(); }
  std::string last_outcome() const override { return "idle"; }

  void release(int n = 1) {
    std::lock_guard lock(mutex_);
    released_ += n;
    cv_.notify_all();
  }
  int started() {
    std::lock_guard lock(mutex_);
    return started_;
  }
  int max_running() {
    std::lock_guard lock(mutex_);
    return max_running_;
  }
  bool more_ = false;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int running_ = 0, max_running_ = 0, started_ = 0, released_ = 0;
};

// Runs loop handlers until `condition` holds (the pool posts completions to the loop), for at
// most 90 s. The work guard makes run_for wait for a posted completion instead of returning at
// once when nothing is queued yet (a pool thread on a busy machine may not have run).
template <class F>
bool run_until(boost::asio::io_context& loop, F condition) {
  const auto guard = boost::asio::make_work_guard(loop);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!condition() && std::chrono::steady_clock::now() < deadline) {
    loop.restart();
    loop.run_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace

TEST_CASE("scheduler_runs_a_worker_once_at_a_time_and_coalesces_wakeups_into_one_more_slice") {
  boost::asio::io_context loop;
  boost::asio::thread_pool pool(4);
  runtime::Scheduler scheduler(loop, pool);
  auto a = std::make_shared<GatedWorker>("projection", "a");
  scheduler.set_workers({a});
  scheduler.wake_all();
  REQUIRE(run_until(loop, [&] { return a->started() == 1; }));
  // Three wakeups while the slice runs: one more slice afterwards, not three, never two at once.
  scheduler.wake_all();
  scheduler.wake_all();
  scheduler.wake(a->key());
  a->release();
  REQUIRE(run_until(loop, [&] { return a->started() == 2; }));
  a->release();
  REQUIRE(run_until(loop, [&] { return scheduler.idle(); }));
  CHECK(a->started() == 2);
  CHECK(a->max_running() == 1);
  pool.join();
}

TEST_CASE("scheduler_wakes_one_unit_by_key_and_drains_after_the_running_slice") {
  boost::asio::io_context loop;
  boost::asio::thread_pool pool(4);
  runtime::Scheduler scheduler(loop, pool);
  auto a = std::make_shared<GatedWorker>("projection", "a");
  auto b = std::make_shared<GatedWorker>("subscription", "a");  // same name, other kind
  scheduler.set_workers({a, b});
  scheduler.wake(b->key());
  REQUIRE(run_until(loop, [&] { return b->started() == 1; }));
  CHECK(a->started() == 0);
  bool drained = false;
  scheduler.drain([&] { drained = true; });
  scheduler.wake_all();  // ignored while draining
  CHECK_FALSE(drained);
  b->release();
  REQUIRE(run_until(loop, [&] { return drained; }));
  CHECK(a->started() == 0);
  CHECK(b->started() == 1);
  scheduler.resume();
  a->more_ = true;  // "more is waiting": the scheduler runs it again by itself
  scheduler.wake(a->key());
  REQUIRE(run_until(loop, [&] { return a->started() == 1; }));
  a->release();
  REQUIRE(run_until(loop, [&] { return a->started() == 2; }));
  a->more_ = false;
  a->release();
  REQUIRE(run_until(loop, [&] { return scheduler.idle(); }));
  pool.join();
}

TEST_CASE("membership_assigns_units_of_every_kind_and_reports_gained_and_lost_work") {
  std::vector<std::shared_ptr<runtime::Worker>> workers{
      std::make_shared<GatedWorker>("projection", "orders"),
      std::make_shared<GatedWorker>("projection", "totals"),
      std::make_shared<GatedWorker>("snapshot", "carts"),
      std::make_shared<GatedWorker>("subscription", "mail/0")};
  std::vector<runtime::UnitKey> units;
  for (const auto& w : workers) units.push_back(w->key());
  // Alone (or not yet in the live set): everything.
  auto change = app::apply_assignment(workers, runtime::assign_units(units, {}, "node-b"));
  CHECK(change.gained.size() == 4);
  CHECK(change.lost.empty());
  // A second node joins: each runs half, the split is the same on both, nothing is run twice.
  const std::vector<std::string> live{"node-a", "node-b"};
  const auto mine_a = runtime::assign_units(units, live, "node-a");
  const auto mine_b = runtime::assign_units(units, live, "node-b");
  CHECK(mine_a.size() == 2);
  CHECK(mine_b.size() == 2);
  for (const auto& k : mine_a) CHECK(std::find(mine_b.begin(), mine_b.end(), k) == mine_b.end());
  change = app::apply_assignment(workers, mine_b);
  CHECK(change.gained.empty());
  CHECK(change.lost.size() == 2);
  CHECK(change.lost == mine_a);
  int assigned = 0;
  for (const auto& w : workers) assigned += w->assigned() ? 1 : 0;
  CHECK(assigned == 2);
  // The same answer again changes nothing; node-a dies: its units come back.
  CHECK(app::apply_assignment(workers, mine_b).lost.empty());
  change = app::apply_assignment(workers, runtime::assign_units(units, {"node-b"}, "node-b"));
  CHECK(change.gained == mine_a);
}

TEST_CASE("retry_delays_of_a_configured_projection_double_from_base_to_cap") {
  const auto cfg = config::parse(
      "projections:\n  - name: p\n    plugin: /x.so\n"
      "    retry: {max_attempts: 4, base_delay_ms: 250, max_delay_ms: 1000}\n");
  const auto policy = runtime::RetryPolicy::of(cfg.projections.at(0).options());
  CHECK(policy.delay(1) == std::chrono::milliseconds(250));
  CHECK(policy.delay(2) == std::chrono::milliseconds(500));
  CHECK(policy.delay(3) == std::chrono::milliseconds(1000));
  CHECK(policy.delay(9) == std::chrono::milliseconds(1000));
  CHECK(policy.after_failure(3) == runtime::RetryPolicy::Action::kRetry);
  CHECK(policy.after_failure(4) == runtime::RetryPolicy::Action::kPark);
  const auto defaults = runtime::RetryPolicy::of(
      config::parse("projections:\n  - {name: p, plugin: /x.so}\n").projections.at(0).options());
  CHECK(defaults.delay(1) == std::chrono::milliseconds(1000));
  CHECK(defaults.max_attempts == 5);
}

TEST_CASE("reload_diff_names_the_restart_only_keys_from_the_table_and_applies_the_rest") {
  const auto running = config::parse("daemon: {poll_interval_ms: 500}\n");
  auto next = config::parse(
      "database: {require_url: true, max_connections: 3}\n"
      "http: {port: 9999}\n"
      "logging: {level: debug}\n"
      "daemon: {poll_interval_ms: 200}\n"
      "projections:\n  - {name: p, plugin: /x.so}\n");
  const auto restart = config::restart_only_changes(running, next);
  CHECK(restart ==
        std::vector<std::string>{"database.require_url", "database.max_connections", "http.port"});
  CHECK(config::restart_only_changes(running, running).empty());
  auto applied = running;
  config::apply_reloadable(applied, next);
  CHECK(applied.daemon.poll_interval_ms == 200);
  CHECK(applied.logging.level == "debug");
  CHECK(applied.projections.size() == 1);
  CHECK(applied.http.port == 8080);  // restart-only: kept
  CHECK_FALSE(applied.database.require_url);
}

TEST_CASE("the_printed_schema_is_the_key_table_with_defaults_and_reloadability") {
  const auto schema = parse_json(config::schema_json());
  const auto& keys = schema.at("keys").as_array();
  const auto paths = config::key_paths();
  REQUIRE(keys.size() == paths.size());
  const auto defaults = config::parse("");
  for (std::size_t i = 0; i < keys.size(); ++i) {
    CAPTURE(paths[i]);
    CHECK(keys[i].at("key").as_string() == paths[i]);
  }
  auto find = [&](const std::string& key) {
    for (const auto& k : keys) {
      if (k.at("key").as_string() == key) return k.as_object();
    }
    FAIL("no key " << key);
    return boost::json::object();
  };
  CHECK(find("daemon.poll_interval_ms").at("reloadable").as_bool());
  CHECK_FALSE(find("database.require_url").at("reloadable").as_bool());
  // The defaults parse("") applies are the table's.
  CHECK(find("daemon.lease_ttl_ms").at("default").as_string() ==
        std::to_string(defaults.daemon.lease_ttl_ms));
  CHECK(find("http.bind").at("default").as_string() == defaults.http.bind);
  CHECK(find("daemon.notify_channel").at("default").as_string() == defaults.daemon.notify_channel);
  CHECK(find("projections[].batch_size").at("default").as_string() == "500");
}
