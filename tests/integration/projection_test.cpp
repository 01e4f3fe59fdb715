#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

// A read model: one row per handled event (a duplicate would violate the primary key) and a
// running count per stream.
class Recorder : public ProjectionHandler {
 public:
  explicit Recorder(std::string tag = "r") : tag_(std::move(tag)) {}
  void apply(const EventEnvelope& e, Transaction& txn) override {
    ++calls;
    if (e.type == "Poison" && !fixed)
      throw std::runtime_error("poisoned event " + std::to_string(e.global_seq));
    if (e.type == "BadSql" && !fixed) txn.exec("insert into no_such_table values (1)");
    if (e.type == "Crash" && !fixed) txn.exec("select pg_terminate_backend(pg_backend_pid())");
    const std::string s = "\"" + txn.schema() + "\"";
    txn.exec("insert into " + s + ".rm_seen (global_seq, tag) values ($1, $2)", e.global_seq, tag_);
    txn.exec("insert into " + s +
                 ".rm_counts (stream_id, n) values ($1::uuid, 1) "
                 "on conflict (stream_id) do update set n = rm_counts.n + 1",
             e.stream_id);
  }
  void reset(Transaction& txn) override {
    ++resets;
    txn.exec("delete from \"" + txn.schema() + "\".rm_seen");
    txn.exec("delete from \"" + txn.schema() + "\".rm_counts");
  }
  std::atomic<int> calls{0};
  std::atomic<int> resets{0};
  std::atomic<bool> fixed{false};

 private:
  std::string tag_;
};

void create_read_model(TestSchema& db) {
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec("create table \"" + db.name() +
                                  "\".rm_seen (global_seq bigint primary key, tag text not null); "
                                  "create table \"" +
                                  db.name() +
                                  "\".rm_counts (stream_id uuid primary key, n int not null)");
}

std::int64_t scalar(TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

std::int64_t seen(TestSchema& db) {
  return scalar(db, "select count(*) from \"" + db.name() + "\".rm_seen");
}

void append_many(Store& store, int streams, int per_stream, const std::string& type = "Tick") {
  for (int s = 0; s < streams; ++s) {
    std::vector<Event> batch;
    for (int i = 0; i < per_stream; ++i) batch.emplace_back(type, i);
    store.events().append_stream(new_uuid(), Expected::any(), batch);
  }
}

ProjectionOptions fast_retry(int attempts = 3, FailurePolicy policy = FailurePolicy::kDeadLetter) {
  ProjectionOptions o;
  o.batch_size = 50;
  o.max_attempts = attempts;
  o.retry_base_delay = 20ms;
  o.retry_max_delay = 200ms;
  o.on_failure = policy;
  return o;
}

// A clock that only moves when told to, so a backoff passes exactly when the test says.
struct ManualClock {
  std::shared_ptr<std::atomic<std::int64_t>> us = std::make_shared<std::atomic<std::int64_t>>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::function<std::chrono::system_clock::time_point()> fn() const {
    return [us = us] {
      return std::chrono::system_clock::time_point(std::chrono::microseconds(us->load()));
    };
  }
  void advance(std::chrono::milliseconds d) {
    *us += std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  }
};

// Moves the clock past any backoff (at most retry_max_delay) and ticks.
TickResult tick_past_backoff(ProjectionDaemon& d, const std::string& name, ManualClock& clock) {
  clock.advance(201ms);
  return d.tick_once(name);
}

}  // namespace

TEST_CASE("projection_applies_every_event_exactly_once_across_many_batches") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 20, 30);
  auto handler = std::make_shared<Recorder>();
  auto daemon = ProjectionDaemon::builder(db.store())
                    .batch_size(37)
                    .register_projection("p", handler)
                    .build();
  CHECK(daemon.metrics("p").lag_events == 600);
  CHECK(daemon.run_until_idle() == 600);
  CHECK(seen(db) == 600);
  CHECK(scalar(db, "select sum(n) from \"" + db.name() + "\".rm_counts") == 600);
  CHECK(daemon.tick_once("p").outcome == TickOutcome::kIdle);
  const auto m = daemon.metrics("p");
  CHECK(m.lag_events == 0);
  CHECK(m.lag_seconds == 0);
  CHECK(m.position == db.store().events().head());
  append_many(db.store(), 1, 5);
  CHECK(daemon.run_until_idle() == 5);
  CHECK(seen(db) == 605);
}

TEST_CASE("a_crash_mid_batch_rolls_back_and_the_next_run_redoes_the_batch_once") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 10);
  append_many(db.store(), 1, 1, "Crash");
  append_many(db.store(), 1, 10);
  auto handler = std::make_shared<Recorder>();
  auto daemon = ProjectionDaemon::builder(db.store())
                    .batch_size(100)
                    .register_projection("p", handler)
                    .build();
  // The handler kills its own connection mid-batch: the transaction is gone, nothing commits.
  CHECK_THROWS_AS(daemon.tick_once("p"), Error);
  CHECK(seen(db) == 0);
  CHECK(daemon.status("p")->last_global_seq == 0);
  handler->fixed = true;
  CHECK(daemon.run_until_idle() == 21);
  CHECK(seen(db) == 21);
}

TEST_CASE("two_runtimes_never_process_one_projection_at_once") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 40, 25);
  auto ha = std::make_shared<Recorder>("a");
  auto hb = std::make_shared<Recorder>("b");
  auto a =
      ProjectionDaemon::builder(db.store()).batch_size(20).register_projection("p", ha).build();
  auto b =
      ProjectionDaemon::builder(db.store()).batch_size(20).register_projection("p", hb).build();
  CHECK(a.owner_id() != b.owner_id());
  std::latch start(2);
  std::atomic<bool> stop{false};
  std::thread ta([&] {
    start.arrive_and_wait();
    a.run_until_idle();
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    while (!stop) b.tick_once("p");
  });
  ta.join();
  stop = true;
  tb.join();
  b.run_until_idle();
  a.run_until_idle();
  // Every event exactly once (rm_seen's primary key would have rejected a second insert, failing
  // the batch), all by the runtime that won the lease: the other never got a turn.
  CHECK(seen(db) == 1000);
  CHECK(ha->calls + hb->calls == 1000);
  CHECK((ha->calls == 0) != (hb->calls == 0));
}

TEST_CASE("a_released_lease_is_taken_over_at_once_and_an_expired_one_after_its_ttl") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 3);
  auto hb = std::make_shared<Recorder>("b");
  auto b = ProjectionDaemon::builder(db.store()).register_projection("p", hb).build();
  {
    auto a = ProjectionDaemon::builder(db.store())
                 .register_projection("p", std::make_shared<Recorder>("a"))
                 .build();
    CHECK(a.tick_once("p").outcome == TickOutcome::kProcessed);
    append_many(db.store(), 1, 2);
    CHECK(b.tick_once("p").outcome == TickOutcome::kLeasedByOther);
    CHECK(db.store().events().head() > 0);
  }  // a stops: its lease is released
  CHECK(b.tick_once("p").outcome == TickOutcome::kProcessed);
  CHECK(hb->calls == 2);

  // Another runtime died holding the lease (never released): taken over once it expires.
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec(
      "update \"" + db.name() +
      "\".projections set lease_owner = 'dead:1:x', lease_epoch = lease_epoch + 1, "
      "lease_expires_at = now() + interval '300 milliseconds'");
  append_many(db.store(), 1, 1);
  CHECK(b.tick_once("p").outcome == TickOutcome::kLeasedByOther);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  TickResult r;
  do {
    r = b.tick_once("p");
  } while (r.outcome == TickOutcome::kLeasedByOther && std::chrono::steady_clock::now() < deadline);
  CHECK(r.outcome == TickOutcome::kProcessed);
  CHECK(b.status("p")->lease_owner == b.owner_id());
}

TEST_CASE("a_runtime_that_lost_its_lease_cannot_commit_and_a_long_batch_keeps_it") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 2);
  // A long batch: the handler blocks until released, past the lease's expiry.
  class Slow : public Recorder {
   public:
    void apply(const EventEnvelope& e, Transaction& txn) override {
      entered.count_down();
      gate.wait();
      Recorder::apply(e, txn);
    }
    std::latch entered{1};
    std::latch gate{1};
  };
  auto slow = std::make_shared<Slow>();
  auto a =
      ProjectionDaemon::builder(db.store()).lease_ttl(100ms).register_projection("p", slow).build();
  auto hb = std::make_shared<Recorder>("b");
  auto b = ProjectionDaemon::builder(db.store()).register_projection("p", hb).build();
  std::thread ta([&] { a.tick_once("p"); });
  slow->entered.wait();
  // Wait until a's lease has expired on the clock.
  while (scalar(db, "select count(*) from \"" + db.name() +
                        "\".projections where lease_expires_at < now()") == 0) {
    std::this_thread::sleep_for(5ms);
  }
  // The batch still holds the projection's row: nobody can take it over mid-batch.
  CHECK(b.tick_once("p").outcome == TickOutcome::kLeasedByOther);
  slow->gate.count_down();
  ta.join();
  CHECK(seen(db) == 2);
  CHECK(hb->calls == 0);

  // Now b takes the expired lease; a's next tick cannot commit anything.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  append_many(db.store(), 1, 1);
  while (b.tick_once("p").outcome == TickOutcome::kLeasedByOther &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(hb->calls == 1);
  const auto before = b.status("p")->lease_epoch;
  append_many(db.store(), 1, 1);
  std::thread again([&] { slow->gate.wait(); });
  again.join();
  CHECK(a.tick_once("p").outcome == TickOutcome::kLeasedByOther);
  CHECK(seen(db) == 3);
  CHECK(b.status("p")->lease_epoch == before);
}

TEST_CASE("a_poison_event_is_retried_with_growing_delay_then_dead_lettered_and_requeued_once") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 2);
  append_many(db.store(), 1, 1, "Poison");
  append_many(db.store(), 1, 3);
  auto handler = std::make_shared<Recorder>();
  ManualClock clock;
  auto d = ProjectionDaemon::builder(db.store())
               .clock(clock.fn())
               .register_projection("p", handler, fast_retry(3))
               .build();

  auto r = d.tick_once("p");
  CHECK(r.outcome == TickOutcome::kBackoff);
  CHECK(seen(db) == 2);  // the events before the poison one are committed
  auto st = *d.status("p");
  CHECK(st.attempts == 1);
  REQUIRE(st.backoff_until.has_value());
  CHECK(st.last_error->find("poisoned event") != std::string::npos);
  const auto first_delay = *st.backoff_until - st.updated_at;
  // The backoff really waits: an immediate tick does not call the handler.
  const int calls = handler->calls;
  CHECK(d.tick_once("p").outcome == TickOutcome::kBackoff);
  CHECK(handler->calls == calls);

  r = tick_past_backoff(d, "p", clock);
  CHECK(r.outcome == TickOutcome::kBackoff);
  st = *d.status("p");
  CHECK(st.attempts == 2);
  CHECK(*st.backoff_until - st.updated_at > first_delay);  // exponential

  r = tick_past_backoff(d, "p",
                        clock);  // third failure: dead-lettered, and the projection moves on
  CHECK(r.outcome == TickOutcome::kProcessed);
  CHECK(seen(db) == 5);
  auto dlq = d.dlq_list("p");
  REQUIRE(dlq.size() == 1);
  CHECK(dlq[0].event.type == "Poison");
  CHECK(dlq[0].attempts == 3);
  CHECK(dlq[0].error.find("poisoned event") != std::string::npos);
  CHECK(d.metrics("p").dlq_count == 1);
  CHECK(d.metrics("p").lag_events == 0);
  CHECK(d.status("p")->attempts == 0);

  handler->fixed = true;
  const int before = handler->calls;
  CHECK(d.dlq_requeue("p", dlq[0].id));
  CHECK_FALSE(d.dlq_requeue("p", dlq[0].id + 1000));
  CHECK(d.tick_once("p").outcome == TickOutcome::kProcessed);
  CHECK(handler->calls == before + 1);  // only that event, once
  CHECK(seen(db) == 6);
  CHECK(d.dlq_list("p").empty());
  d.tick_once("p");
  CHECK(handler->calls == before + 1);
}

TEST_CASE("a_handler_sql_error_reaches_the_dlq_without_losing_the_batch") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 3);
  append_many(db.store(), 1, 1, "BadSql");
  append_many(db.store(), 1, 3);
  auto handler = std::make_shared<Recorder>();
  auto d = ProjectionDaemon::builder(db.store())
               .register_projection("p", handler, fast_retry(1))
               .build();
  CHECK(d.run_until_idle() == 7);
  CHECK(seen(db) == 6);
  const auto dlq = d.dlq_list("p");
  REQUIRE(dlq.size() == 1);
  CHECK(dlq[0].error.find("no_such_table") != std::string::npos);
  CHECK(d.dlq_delete("p", dlq[0].id));
  CHECK(d.dlq_list("p").empty());
}

TEST_CASE("the_stop_policy_stops_the_projection_until_resume") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 1, "Poison");
  append_many(db.store(), 1, 2);
  auto handler = std::make_shared<Recorder>();
  auto d = ProjectionDaemon::builder(db.store())
               .register_projection("p", handler, fast_retry(1, FailurePolicy::kStop))
               .build();
  CHECK(d.tick_once("p").outcome == TickOutcome::kStopped);
  CHECK(d.tick_once("p").outcome == TickOutcome::kStopped);
  CHECK(d.status("p")->stopped);
  CHECK(d.dlq_list("p").empty());
  handler->fixed = true;
  d.resume("p");
  CHECK(d.run_until_idle() == 3);
  CHECK(seen(db) == 3);
}

TEST_CASE("pause_resume_reset_and_rebuild_do_what_they_say") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 2, 5);
  auto handler = std::make_shared<Recorder>();
  auto d = ProjectionDaemon::builder(db.store()).register_projection("p", handler).build();
  d.pause("p");
  CHECK(d.tick_once("p").outcome == TickOutcome::kPaused);
  CHECK(seen(db) == 0);
  CHECK(d.status("p")->paused);
  d.resume("p");
  CHECK(d.run_until_idle() == 10);

  // Reset to a global_seq: only later events are handled again.
  const auto all = d.status("p")->last_global_seq;
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec("delete from \"" + db.name() + "\".rm_seen where global_seq > " +
                                  std::to_string(all - 3));
  d.reset_checkpoint("p", all - 3);
  CHECK(d.status("p")->last_global_seq == all - 3);
  CHECK(d.run_until_idle() == 3);
  CHECK(seen(db) == 10);

  // Rebuild: reset() clears the read model, the DLQ empties, everything is handled again.
  append_many(db.store(), 1, 1, "Poison");
  auto strict = ProjectionDaemon::builder(db.store())
                    .register_projection("p", handler, fast_retry(1))
                    .build();
  d.release_leases();
  strict.run_until_idle();
  CHECK(strict.dlq_list("p").size() == 1);
  handler->fixed = true;
  strict.rebuild("p");
  CHECK(handler->resets == 1);
  CHECK(seen(db) == 0);
  CHECK(strict.dlq_list("p").empty());
  CHECK(strict.run_until_idle() == 11);
  CHECK(seen(db) == 11);
  d.reset_checkpoint("p", 0);
  CHECK(strict.status("p")->position == FeedPosition{});
  CHECK_THROWS_AS(strict.rebuild("nope"), Error);
  CHECK_THROWS_AS(strict.tick_once("nope"), Error);
}

TEST_CASE("event_type_filters_skip_other_events_but_advance_the_checkpoint") {
  TestSchema db;
  create_read_model(db);
  append_many(db.store(), 1, 4, "Wanted");
  append_many(db.store(), 1, 6, "Other");
  auto handler = std::make_shared<Recorder>();
  ProjectionOptions o;
  o.event_types = {"Wanted"};
  auto d = ProjectionDaemon::builder(db.store()).register_projection("p", handler, o).build();
  d.run_until_idle();
  CHECK(handler->calls == 4);
  CHECK(d.metrics("p").lag_events == 0);
  CHECK(d.list().size() == 1);
}
