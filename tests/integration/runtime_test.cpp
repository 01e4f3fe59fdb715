// The runtime units (lease, checkpoint, parking, membership) against real PostgreSQL, and the
// projection runtime's operator errors and catch-up across retry backoffs.

#include "support/test_db.hpp"

#include "db/sql.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/lease.hpp"
#include "runtime/parking.hpp"
#include "store_state.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>

using namespace rillflow;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

std::int64_t scalar(TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

// A clock that moves only when told to; the sleeper advances it instead of waiting.
struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> us = std::make_shared<std::atomic<std::int64_t>>(
      runtime::to_micros(std::chrono::system_clock::now()));

  std::function<std::chrono::system_clock::time_point()> clock() const {
    return [us = us] { return runtime::from_micros(us->load()); };
  }
  std::function<void(std::chrono::milliseconds)> sleeper(
      std::shared_ptr<std::vector<std::chrono::milliseconds>> log) const {
    return [us = us, log](std::chrono::milliseconds d) {
      log->push_back(d);
      *us += std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    };
  }
};

// "Poison" events always fail; "Flaky" ones until the clock reaches `healed_at`.
class Flaky : public ProjectionHandler {
 public:
  Flaky(std::function<std::chrono::system_clock::time_point()> clock,
        std::chrono::system_clock::time_point healed_at)
      : clock_(std::move(clock)), healed_at_(healed_at) {}
  void apply(const EventEnvelope& e, Transaction&) override {
    if (e.type == "Poison") throw std::runtime_error("poisoned");
    if (e.type == "Flaky" && clock_() < healed_at_) throw std::runtime_error("not yet");
  }

 private:
  std::function<std::chrono::system_clock::time_point()> clock_;
  std::chrono::system_clock::time_point healed_at_;
};

void append(Store& store, const std::string& type, int n = 1) {
  std::vector<Event> batch;
  for (int i = 0; i < n; ++i) batch.emplace_back(type, i);
  store.events().append_stream(new_uuid(), Expected::any(), batch);
}

ProjectionOptions slow_retry(int attempts, FailurePolicy policy = FailurePolicy::kDeadLetter) {
  ProjectionOptions o;
  o.max_attempts = attempts;
  o.retry_base_delay = 60s;  // real minutes: only a fake clock gets past them in a test
  o.retry_max_delay = 10min;
  o.on_failure = policy;
  return o;
}

}  // namespace

TEST_CASE("a_lease_held_elsewhere_is_refused_and_a_lost_one_cannot_write") {
  TestSchema db;
  const auto& state = *detail::StoreAccess::state(db.store());
  const runtime::Leases a(state, "node-a", 30s), b(state, "node-b", 30s);
  const runtime::Checkpoints checkpoints(state);
  const runtime::UnitKey key{"test-kind", "unit-1"};
  auto& pool = state.connections();

  const auto la = db::without_transaction(pool, [&](auto& txn, db::Connection& conn) {
    a.ensure(txn, conn, key);
    return a.acquire(txn, conn, key);
  });
  REQUIRE(la.has_value());
  db::without_transaction(pool, [&](auto& txn, db::Connection& conn) {
    CHECK_FALSE(b.acquire(txn, conn, key).has_value());
    CHECK_THROWS_AS(b.acquire_or_throw(txn, conn, key), LeaseHeldElsewhere);
    CHECK(a.acquire(txn, conn, key)->epoch == la->epoch);  // a renewal keeps the epoch
  });

  // The lease expires; b takes it over with a new epoch.
  auto raw = db.raw();
  pqxx::nontransaction(raw).exec("update \"" + db.name() +
                                 "\".work_units set lease_expires_at = now() - interval '1 s'");
  const auto lb = db::without_transaction(
      pool, [&](auto& txn, db::Connection& conn) { return b.acquire_or_throw(txn, conn, key); });
  CHECK(lb.epoch == la->epoch + 1);

  // a still believes it holds epoch la: its fence and its checkpoint are refused.
  runtime::CheckpointWrite w;
  w.position = {0, 1, 7};
  w.last_global_seq = 7;
  db::with_connection(pool, [&](db::Connection& conn) {
    pqxx::work txn(conn.raw());
    CHECK_THROWS_AS(a.fence(txn, conn, key, la->epoch), LeaseLost);
  });
  db::with_connection(pool, [&](db::Connection& conn) {
    pqxx::work txn(conn.raw());
    try {
      checkpoints.write(txn, conn, key, "node-a", la->epoch, 30s, std::chrono::system_clock::now(),
                        w);
      FAIL("a lost lease wrote a checkpoint");
    } catch (const LeaseLost& e) {
      CHECK(e.code() == ErrorCode::kLeaseLost);
      CHECK(e.epoch() == la->epoch);
      CHECK(std::string(e.what()).find("unit-1") != std::string::npos);
    }
  });
  CHECK(scalar(db, "select after_seq from \"" + db.name() + "\".work_units") == 0);

  // b's fenced transaction holds the row: a thief cannot take the lease until it commits.
  db::with_connection(pool, [&](db::Connection& conn) {
    pqxx::work txn(conn.raw());
    b.fence(txn, conn, key, lb.epoch);
    auto thief = db.raw();
    pqxx::nontransaction t(thief);
    t.exec("set lock_timeout = '200ms'");
    CHECK_THROWS(t.exec("update \"" + db.name() +
                        "\".work_units set lease_owner = 'thief', lease_epoch = lease_epoch + 1"));
    checkpoints.write(txn, conn, key, "node-b", lb.epoch, 30s, std::chrono::system_clock::now(), w);
    txn.commit();
  });
  CHECK(scalar(db, "select after_seq from \"" + db.name() + "\".work_units") == 7);

  db::without_transaction(pool,
                          [&](auto& txn, db::Connection& conn) { b.release(txn, conn, key); });
  const auto la2 = db::without_transaction(
      pool, [&](auto& txn, db::Connection& conn) { return a.acquire(txn, conn, key); });
  REQUIRE(la2.has_value());  // released: taken over at once
  CHECK(la2->epoch == lb.epoch + 1);
}

TEST_CASE("a_checkpoint_never_moves_backwards") {
  TestSchema db;
  const auto& state = *detail::StoreAccess::state(db.store());
  const runtime::Leases leases(state, "node-a", 30s);
  const runtime::Checkpoints checkpoints(state);
  const runtime::UnitKey key{"test-kind", "unit-2"};
  auto& pool = state.connections();
  const auto lease = db::without_transaction(pool, [&](auto& txn, db::Connection& conn) {
    leases.ensure(txn, conn, key);
    return leases.acquire_or_throw(txn, conn, key);
  });
  const auto write = [&](FeedPosition p) {
    db::with_connection(pool, [&](db::Connection& conn) {
      pqxx::work txn(conn.raw());
      runtime::CheckpointWrite w;
      w.position = p;
      w.last_global_seq = p.after_seq;
      checkpoints.write(txn, conn, key, "node-a", lease.epoch, 30s,
                        std::chrono::system_clock::now(), w);
      txn.commit();
    });
  };
  write({0, 5, 10});
  write({0, 5, 10});  // standing still is allowed
  CHECK_THROWS_AS(write({0, 5, 3}), Error);
  write({5, 0, 0});
  CHECK_THROWS_AS(write({0, 5, 12}), Error);
  CHECK(scalar(db, "select from_tick from \"" + db.name() + "\".work_units") == 5);
  CHECK(scalar(db, "select last_global_seq from \"" + db.name() + "\".work_units") == 10);
}

TEST_CASE("parked_events_belong_to_their_kind_and_name") {
  TestSchema db;
  const auto& state = *detail::StoreAccess::state(db.store());
  const runtime::Parking parking(state);
  const runtime::UnitKey mine{"test-kind", "u"}, other{"other-kind", "u"};
  EventEnvelope e;
  e.global_seq = 42;
  e.stream_id = new_uuid();
  e.stream_seq = 3;
  e.type = "Thing";
  e.body = boost::json::object{{"n", 1}};
  e.headers = boost::json::object{{"h", "v"}};
  e.correlation_id = new_uuid();
  e.created_at = runtime::from_micros(1700000000123456);
  auto& pool = state.connections();
  db::without_transaction(pool, [&](auto& txn, db::Connection& conn) {
    parking.park(txn, conn, mine, e, "boom", 3);
    const auto listed = parking.list(txn, conn, mine, 10);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].event.global_seq == 42);
    CHECK(listed[0].event.stream_id == e.stream_id);
    CHECK(listed[0].event.body == e.body);
    CHECK(listed[0].event.headers == e.headers);
    CHECK(listed[0].event.correlation_id == e.correlation_id);
    CHECK_FALSE(listed[0].event.causation_id.has_value());
    CHECK(listed[0].event.created_at == e.created_at);
    CHECK(listed[0].error == "boom");
    CHECK(listed[0].attempts == 3);
    CHECK(parking.list(txn, conn, other, 10).empty());
    CHECK_FALSE(parking.requeue(txn, conn, other, listed[0].id));
    CHECK(parking.requeue(txn, conn, mine, listed[0].id));
    const auto again = parking.take_requeued(txn, conn, mine);
    REQUIRE(again.size() == 1);
    parking.settle(txn, conn, again[0].id, std::string("still boom"));
    CHECK(parking.list(txn, conn, mine, 10)[0].attempts == 4);
    CHECK(parking.take_requeued(txn, conn, mine).empty());
    CHECK_FALSE(parking.remove(txn, conn, other, listed[0].id));
    CHECK(parking.remove(txn, conn, mine, listed[0].id));
    CHECK(parking.list(txn, conn, mine, 10).empty());
  });
}

TEST_CASE("admin_calls_on_unknown_names_are_errors_and_write_nothing") {
  TestSchema db;
  append(db.store(), "Tick", 3);
  auto d =
      ProjectionDaemon::builder(db.store())
          .register_projection("known", std::make_shared<Flaky>(std::chrono::system_clock::now,
                                                                std::chrono::system_clock::now()))
          .build();
  const auto rows = [&] {
    return scalar(db, "select count(*) from \"" + db.name() + "\".work_units");
  };
  CHECK_THROWS_AS(d.pause("typo"), NotFound);
  CHECK_THROWS_AS(d.resume("typo"), NotFound);
  CHECK_THROWS_AS(d.reset_checkpoint("typo", 0), NotFound);
  CHECK_THROWS_AS(d.rebuild("typo"), NotFound);
  CHECK_THROWS_AS(d.metrics("typo"), NotFound);
  CHECK_THROWS_AS(d.dlq_list("typo"), NotFound);
  CHECK_THROWS_AS(d.dlq_requeue("typo", 1), NotFound);
  CHECK_THROWS_AS(d.dlq_delete("typo", 1), NotFound);
  try {
    d.pause("typo");
  } catch (const NotFound& e) {
    CHECK(e.code() == ErrorCode::kNotFound);
    CHECK(e.name() == "typo");
    CHECK(std::string(e.what()).find("'typo'") != std::string::npos);
  }
  CHECK(rows() == 0);
  CHECK_FALSE(d.status("typo").has_value());
  try {
    d.pause("");
    FAIL("an empty name was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
  }
  CHECK(rows() == 0);

  // Registered but never run: the admin call creates its row.
  d.pause("known");
  CHECK(d.status("known")->paused);
  CHECK(rows() == 1);
  // Beyond the head: refused, checkpoint untouched.
  const auto head = db.store().events().head();
  CHECK_THROWS_AS(d.reset_checkpoint("known", head + 1), Error);
  d.reset_checkpoint("known", head);
  CHECK(d.status("known")->last_global_seq == head);

  // A stored name works without a registration (admin tools run without plugins).
  auto admin = ProjectionDaemon::builder(db.store()).build();
  admin.resume("known");
  CHECK_FALSE(admin.status("known")->paused);
  CHECK(admin.metrics("known").name == "known");
}

TEST_CASE("run_until_idle_waits_out_retry_backoffs_then_reports") {
  TestSchema db;
  append(db.store(), "Tick", 2);
  append(db.store(), "Flaky");
  append(db.store(), "Tick", 2);
  append(db.store(), "Poison");
  append(db.store(), "Tick");
  FakeClock fake;
  auto slept = std::make_shared<std::vector<std::chrono::milliseconds>>();
  // Healed after two retries (60 s, then 120 s) but before a third.
  auto handler = std::make_shared<Flaky>(fake.clock(), fake.clock()() + 150s);
  auto d = ProjectionDaemon::builder(db.store())
               .clock(fake.clock())
               .sleeper(fake.sleeper(slept))
               .register_projection("p", handler, slow_retry(3))
               .build();
  const auto report = d.run_until_idle();
  CHECK(report.processed == 7);  // handled, the parked poison event included
  CHECK(report.parked == 1);
  CHECK(report.remaining == 0);
  // Two retries of the flaky event (60 s, then 120 s), two of the poison one.
  REQUIRE(slept->size() == 4);
  CHECK((*slept)[0] >= 60s);
  CHECK((*slept)[1] >= 120s);
  CHECK(d.dlq_list("p").size() == 1);
  CHECK(d.status("p")->attempts == 0);

  // A projection stopped by its policy: what is left is reported.
  append(db.store(), "Poison");
  append(db.store(), "Tick", 4);
  auto strict = ProjectionDaemon::builder(db.store())
                    .clock(fake.clock())
                    .sleeper(fake.sleeper(slept))
                    .register_projection("s", handler, slow_retry(2, FailurePolicy::kStop))
                    .build();
  const auto stopped = strict.run_until_idle("s", {});
  CHECK(stopped.remaining > 0);
  CHECK(strict.status("s")->stopped);
}

TEST_CASE("handler_sql_errors_name_their_sqlstate_and_read_models_land_in_the_store_schema") {
  TestSchema db;
  append(db.store(), "Tick", 2);
  class Writer : public ProjectionHandler {
   public:
    void prepare(Transaction& txn) override {
      txn.exec("create table if not exists rm_unqualified (global_seq bigint primary key)");
    }
    void apply(const EventEnvelope& e, Transaction& txn) override {
      txn.exec("insert into rm_unqualified values ($1)", e.global_seq);
    }
  };
  auto d = ProjectionDaemon::builder(db.store())
               .register_projection("w", std::make_shared<Writer>())
               .build();
  CHECK(d.run_until_idle().processed == 2);
  CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".rm_unqualified") == 2);
  CHECK(scalar(db,
               "select count(*) from pg_tables where tablename = 'rm_unqualified' and "
               "schemaname = 'public'") == 0);

  class Missing : public ProjectionHandler {
   public:
    void apply(const EventEnvelope&, Transaction& txn) override {
      try {
        txn.exec("insert into plugin_table_that_is_missing values (1)");
      } catch (const Error& e) {
        code = e.code();
        sqlstate = e.sqlstate();
        message = e.what();
        throw;
      }
    }
    ErrorCode code = ErrorCode::kInternal;
    std::string sqlstate, message;
  };
  auto missing = std::make_shared<Missing>();
  ProjectionOptions once;
  once.max_attempts = 1;
  auto m = ProjectionDaemon::builder(db.store()).register_projection("m", missing, once).build();
  m.run_until_idle();
  CHECK(missing->code == ErrorCode::kDatabase);
  CHECK(missing->sqlstate == "42P01");
  CHECK(missing->message.find("42P01") != std::string::npos);
  CHECK(missing->message.find("plugin_table_that_is_missing") != std::string::npos);
  CHECK(missing->message.find("schema-sync") == std::string::npos);
  CHECK(m.dlq_list("m").front().error.find("42P01") != std::string::npos);
}

TEST_CASE("a_runtime_silent_for_two_heartbeats_is_not_live_though_its_lease_ttl_has_not_passed") {
  TestSchema db;
  auto a = ProjectionDaemon::builder(db.store())
               .owner_id("node-a")
               .lease_ttl(60s)
               .heartbeat_interval(1s)
               .build();
  auto b = ProjectionDaemon::builder(db.store())
               .owner_id("node-b")
               .lease_ttl(60s)
               .heartbeat_interval(1s)
               .build();
  a.heartbeat();
  CHECK(b.heartbeat() == std::vector<std::string>{"node-a", "node-b"});
  // node-a was killed: its last heartbeat is 3 s old (within the 60 s TTL, past 2.5 beats).
  auto raw = db.raw();
  pqxx::nontransaction(raw).exec("update \"" + db.name() +
                                 "\".daemon_nodes set heartbeat_at = now() - interval '3 s' "
                                 "where owner = 'node-a'");
  CHECK(b.heartbeat() == std::vector<std::string>{"node-b"});
  b.leave();
  CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".daemon_nodes") == 1);
}
