#include "schema/migrations.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <latch>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

TEST_CASE("schema_plan_lists_the_ddl_until_sync_and_nothing_after") {
  TestSchema db(/*migrate=*/false);
  auto schema = db.store().schema();
  const auto plan = schema.plan();
  REQUIRE(plan.size() == rillflow::schema::migrations().size());
  CHECK(plan[0].version == 1);
  const auto sql = schema.plan_sql();
  CHECK(sql.find("create schema if not exists \"" + db.name() + "\"") != std::string::npos);
  CHECK(sql.find("create table \"" + db.name() + "\".events") != std::string::npos);
  CHECK_FALSE(schema.drift().ok());

  const auto applied = schema.sync();
  CHECK(applied.size() == plan.size());
  CHECK(schema.plan().empty());
  CHECK(schema.plan_sql().empty());
  CHECK(schema.drift().ok());
  CHECK(schema.sync().empty());  // idempotent
}

TEST_CASE("plan_sql_runs_as_printed") {
  TestSchema db(/*migrate=*/false);
  const auto sql = db.store().schema().plan_sql();
  auto conn = db.raw();
  pqxx::work txn(conn);
  txn.exec(sql);
  txn.commit();
  CHECK(db.store().schema().plan().empty());
  CHECK(db.store().schema().drift().ok());
  db.store().events().append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
}

TEST_CASE("concurrent_schema_syncs_apply_each_migration_once") {
  TestSchema db(/*migrate=*/false);
  constexpr int kThreads = 6;
  std::latch start(kThreads);
  std::vector<std::size_t> applied(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = db.builder().max_connections(1).build();
      start.arrive_and_wait();
      try {
        applied[t] = store.schema().sync().size();
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::size_t total = 0;
  for (int t = 0; t < kThreads; ++t) {
    CHECK(errors[t] == "");
    total += applied[t];
  }
  CHECK(total == rillflow::schema::migrations().size());
  CHECK(db.store().schema().drift().ok());
}

TEST_CASE("drift_reports_missing_objects_changed_and_unknown_migrations") {
  TestSchema db;
  auto conn = db.raw();
  const std::string s = "\"" + db.name() + "\"";
  pqxx::nontransaction(conn).exec("drop index " + s + ".events_tx_id_idx");
  auto drift = db.store().schema().drift();
  REQUIRE(drift.problems.size() == 1);
  CHECK(drift.problems[0].find("events_tx_id_idx") != std::string::npos);

  pqxx::nontransaction(conn).exec("update " + s +
                                  ".rillflow_migrations set checksum = 'x' where version = 1");
  pqxx::nontransaction(conn).exec(
      "insert into " + s +
      ".rillflow_migrations (version, name, checksum) values (999, 'future', 'y')");
  drift = db.store().schema().drift();
  CHECK(drift.problems.size() == 3);
  bool changed = false, unknown = false;
  for (const auto& p : drift.problems) {
    changed = changed || p.find("different text") != std::string::npos;
    unknown = unknown || p.find("999") != std::string::npos;
  }
  CHECK(changed);
  CHECK(unknown);
}

TEST_CASE("schemas_are_isolated_and_names_are_validated") {
  TestSchema a;
  TestSchema b;
  const auto id = new_uuid();
  a.store().events().append_stream(id, Expected::any(), {Event("OnlyInA", 1)});
  CHECK(a.store().events().read_stream(id).size() == 1);
  CHECK(b.store().events().read_stream(id).empty());

  for (const std::string& bad :
       std::vector<std::string>{"", "Public", "a-b", "x\"; drop schema public; --", "1abc",
                                "pg_catalog", std::string(64, 'a'), "sch ema"}) {
    CAPTURE(bad);
    try {
      Store::builder(a.url()).schema(bad).build();
      FAIL("accepted an invalid schema name");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kInvalidArgument);
    }
  }
  CHECK_THROWS_AS(Store::builder(a.url()).notify_channel("bad channel").build(), Error);
}

TEST_CASE("using_an_unmigrated_schema_says_to_run_schema_sync") {
  TestSchema db(/*migrate=*/false);
  try {
    db.store().events().append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
    FAIL("append on a missing schema succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kSchema);
    CHECK(std::string(e.what()).find("schema-sync") != std::string::npos);
  }
}

TEST_CASE("drift_detects_events_restored_from_another_cluster") {
  TestSchema db;
  CHECK(db.store().schema().drift().ok());
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec(
      "insert into \"" + db.name() +
      "\".events (stream_id, stream_seq, event_type, body, tx_id) "
      "values (gen_random_uuid(), 1, 'Restored', '{}', "
      "(pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text::xid8)");
  const auto drift = db.store().schema().drift();
  REQUIRE(drift.problems.size() == 1);
  CHECK(drift.problems[0].find("another cluster") != std::string::npos);
}
