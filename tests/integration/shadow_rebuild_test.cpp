// Shadow rebuilds (ProjectionDaemon::rebuild_shadow): the live read model keeps serving while the
// new one is built beside it, the swap is one transaction, and every way out before the swap
// leaves the live read model and checkpoint as they were.

#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

// One row per handled event (a duplicate violates the primary key) tagged with the handler's
// version, and a count per stream; both tables created by prepare() in the target schema.
class ShadowCounts : public ProjectionHandler {
 public:
  explicit ShadowCounts(std::string tag, bool supports = true, std::string fail_type = {},
                        bool qualify = true)
      : tag_(std::move(tag)),
        supports_(supports),
        fail_type_(std::move(fail_type)),
        qualify_(qualify) {}
  void prepare(Transaction& txn) override {
    txn.exec("create table if not exists " + table(txn, "sc_seen") +
             " (global_seq bigint primary key, tag text not null)");
    txn.exec("create table if not exists " + table(txn, "sc_counts") +
             " (stream_id uuid primary key, n bigint not null)");
  }
  void apply(const EventEnvelope& e, Transaction& txn) override {
    if (!fail_type_.empty() && e.type == fail_type_) throw std::runtime_error("refusing " + e.type);
    txn.exec("insert into " + table(txn, "sc_seen") + " values ($1, $2)", e.global_seq, tag_);
    txn.exec("insert into " + table(txn, "sc_counts") +
                 " as c values ($1::uuid, 1) on conflict (stream_id) do update set n = c.n + 1",
             e.stream_id);
    if (txn.is_shadow()) ++shadow_applies;
  }
  void reset(Transaction& txn) override {
    txn.exec("truncate " + table(txn, "sc_seen") + ", " + table(txn, "sc_counts"));
  }
  bool supports_shadow_rebuild() const override { return supports_; }

  std::atomic<int> shadow_applies{0};

 private:
  // Qualified with the target schema, or unqualified (the search_path starts with it).
  std::string table(const Transaction& txn, const char* name) const {
    return qualify_ ? "\"" + txn.target_schema() + "\"." + name : std::string(name);
  }
  std::string tag_;
  bool supports_;
  std::string fail_type_;
  bool qualify_;
};

std::int64_t scalar(TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

std::string text(TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  const auto r = pqxx::nontransaction(conn).exec(sql);
  return r.empty() || r[0][0].is_null() ? std::string() : r[0][0].as<std::string>();
}

std::string q(TestSchema& db) {
  return "\"" + db.name() + "\"";
}

void append_many(Store& store, int streams, int per_stream, const std::string& type = "Tick") {
  for (int s = 0; s < streams; ++s) {
    std::vector<Event> batch;
    for (int i = 0; i < per_stream; ++i) batch.emplace_back(type, i);
    store.events().append_stream(new_uuid(), Expected::any(), batch);
  }
}

// kStop with one attempt: an event applied twice (a primary key violation) stops the build and
// fails the test instead of being parked quietly.
ProjectionOptions small_batches(FailurePolicy policy = FailurePolicy::kStop) {
  ProjectionOptions o;
  o.batch_size = 40;
  o.max_attempts = 1;
  o.on_failure = policy;
  return o;
}

ProjectionDaemon runtime_with(TestSchema& db, const std::string& name,
                              std::shared_ptr<ProjectionHandler> handler,
                              ProjectionOptions options = small_batches()) {
  return ProjectionDaemon::builder(db.store())
      .register_projection(name, std::move(handler), options)
      .lease_ttl(2000ms)
      .build();
}

// The read model equals what a fresh build from the whole feed gives: every event once, counts
// per stream as the events table says.
void check_equals_fresh_build(TestSchema& db, const std::string& tag) {
  const auto s = q(db);
  CHECK(scalar(db, "select count(*) from " + s + ".sc_seen") ==
        scalar(db, "select count(*) from " + s + ".events"));
  CHECK(scalar(db, "select count(*) from " + s + ".sc_seen where tag <> '" + tag + "'") == 0);
  CHECK(scalar(db, "select count(*) from (select stream_id, count(*) n from " + s +
                       ".events group by stream_id except select stream_id, n from " + s +
                       ".sc_counts) d") == 0);
  CHECK(scalar(db, "select count(*) from " + s + ".sc_counts") ==
        scalar(db, "select count(distinct stream_id) from " + s + ".events"));
}

std::int64_t shadow_units(TestSchema& db) {
  return scalar(db, "select count(*) from " + q(db) +
                        ".work_units where kind = 'projection_shadow'") +
         scalar(db, "select count(*) from " + q(db) + ".shadow_rebuilds");
}

bool schema_exists(TestSchema& db, const std::string& name) {
  return scalar(db, "select count(*) from pg_namespace where nspname = '" + name + "'") == 1;
}

}  // namespace

TEST_CASE("a_shadow_rebuild_builds_beside_the_serving_live_model_and_swaps_it_in_once") {
  TestSchema db;
  append_many(db.store(), 30, 10);
  auto live = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v1"));
  REQUIRE(live.run_until_idle().processed == 300);
  const auto s = q(db);

  auto v2 = std::make_shared<ShadowCounts>("v2");
  auto cli = runtime_with(db, "counts", v2);
  std::vector<ShadowRebuildProgress> seen;
  std::string shadow_schema;
  bool appended = false;
  ShadowRebuildOptions options;
  options.on_progress = [&](const ShadowRebuildProgress& p) {
    seen.push_back(p);
    shadow_schema = p.shadow_schema;
    // The live read model keeps serving, complete, from the old version...
    CHECK(scalar(db, "select count(*) from " + s + ".sc_seen where tag = 'v1'") ==
          scalar(db, "select last_global_seq from " + s +
                         ".work_units where kind = 'projection' and name = 'counts'"));
    CHECK(scalar(db, "select count(*) from " + s + ".sc_seen where tag = 'v2'") == 0);
    if (!appended) {
      // ...and advancing: events appended during the build reach the live model now and the
      // new one once.
      appended = true;
      append_many(db.store(), 5, 4);
      CHECK(live.run_until_idle().processed == 20);
      live.release_leases();
      const auto from_status = cli.shadow_rebuild_progress("counts");
      REQUIRE(from_status);
      CHECK(from_status->shadow_schema == p.shadow_schema);
      CHECK(from_status->done == p.done);
    }
  };
  const auto report = cli.rebuild_shadow("counts", options);

  CHECK(report.swapped);
  CHECK(report.parked == 0);
  CHECK(report.processed == 320);
  CHECK(v2->shadow_applies == 320);  // each event once, none twice after a retry
  CHECK(report.relations == std::vector<std::string>{"sc_counts", "sc_seen"});
  CHECK(report.last_global_seq == db.store().events().head());
  REQUIRE(seen.size() >= 3);  // batches of 40
  CHECK(seen.front().done < seen.back().done);
  CHECK(seen.back().done <= seen.back().total);
  CHECK(seen.back().rate > 0);
  REQUIRE(seen.back().eta_seconds);
  check_equals_fresh_build(db, "v2");
  CHECK(shadow_units(db) == 0);
  CHECK_FALSE(schema_exists(db, shadow_schema));
  CHECK_FALSE(schema_exists(db, "rillflow_old_" + shadow_schema.substr(16)));
  CHECK_FALSE(cli.shadow_rebuild_progress("counts"));
  const auto status = cli.status("counts");
  CHECK(status->last_global_seq == report.last_global_seq);
  CHECK_FALSE(status->paused);
  CHECK_FALSE(status->lease_owner);  // handed back for whichever runtime runs it

  // The live projection continues from the shadow's checkpoint: later events once.
  append_many(db.store(), 2, 3);
  CHECK(cli.run_until_idle().processed == 6);
  check_equals_fresh_build(db, "v2");
}

TEST_CASE("the_swap_takes_the_live_lease_from_a_running_runtime_which_then_carries_on") {
  TestSchema db;
  append_many(db.store(), 10, 10);
  auto handler = std::make_shared<ShadowCounts>("v1");
  auto running = runtime_with(db, "counts", handler);
  std::atomic<bool> stop{false};
  std::thread loop([&] { running.run_loop(stop, 10ms); });
  struct Joiner {  // also when a REQUIRE fails
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{stop, loop};
  const auto s = q(db);
  const auto caught_up = [&](std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      // -1 until the running runtime created the projection's row.
      if (scalar(db, "select coalesce((select last_global_seq from " + s +
                         ".work_units where kind = 'projection' and name = 'counts'), -1)") ==
          db.store().events().head()) {
        return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  REQUIRE(caught_up(60s));
  CHECK(text(db, "select lease_owner from " + s + ".work_units where kind = 'projection'") ==
        running.owner_id());

  auto cli = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v2"));
  const auto report = cli.rebuild_shadow("counts");
  CHECK(report.swapped);
  CHECK(scalar(db, "select count(*) from " + s + ".sc_seen where tag = 'v2'") == 100);

  // The running runtime takes the projection back and handles new events into the new model.
  append_many(db.store(), 3, 5);
  CHECK(caught_up(60s));
  stop = true;
  loop.join();  // the runtime hands its lease back
  CHECK(scalar(db, "select count(*) from " + s + ".sc_seen") == 115);
  CHECK(scalar(db, "select count(*) from " + s + ".sc_seen where tag = 'v1'") == 15);
  CHECK_FALSE(cli.status("counts")->paused);
}

TEST_CASE("stopping_keeps_the_shadow_for_a_resume_and_cancel_drops_it_leaving_live_untouched") {
  TestSchema db;
  append_many(db.store(), 20, 10);
  auto live = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v1"));
  live.run_until_idle();
  live.release_leases();
  const auto s = q(db);
  const auto checkpoint = live.status("counts")->position;

  auto cli = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v2"));
  int batches = 0;
  ShadowRebuildOptions stop_early;
  stop_early.on_progress = [&](const ShadowRebuildProgress&) { ++batches; };
  stop_early.should_stop = [&] { return batches >= 1; };
  auto report = cli.rebuild_shadow("counts", stop_early);
  CHECK_FALSE(report.swapped);
  CHECK(report.processed == 40);
  const auto progress = cli.shadow_rebuild_progress("counts");
  REQUIRE(progress);
  CHECK(progress->total == 200);
  CHECK(progress->done == 40);
  CHECK(schema_exists(db, progress->shadow_schema));
  CHECK(scalar(db, "select count(*) from " + s + ".sc_seen where tag = 'v1'") == 200);
  CHECK(cli.status("counts")->position == checkpoint);

  SUBCASE("a rerun resumes where the shadow stopped") {
    report = cli.rebuild_shadow("counts");
    CHECK(report.swapped);
    CHECK(report.processed == 160);
    check_equals_fresh_build(db, "v2");
  }
  SUBCASE("cancel drops the shadow, and only the shadow") {
    CHECK(cli.cancel_shadow_rebuild("counts"));
    CHECK_FALSE(schema_exists(db, progress->shadow_schema));
    CHECK(shadow_units(db) == 0);
    CHECK_FALSE(cli.cancel_shadow_rebuild("counts"));  // nothing left to cancel
    CHECK(cli.status("counts")->position == checkpoint);
    CHECK_FALSE(cli.status("counts")->paused);
    check_equals_fresh_build(db, "v1");
    CHECK_THROWS_AS(cli.cancel_shadow_rebuild("no-such-projection"), NotFound);
  }
}

TEST_CASE("a_failing_shadow_build_or_refused_swap_leaves_the_live_model_and_checkpoint_as_they_were") {
  TestSchema db;
  append_many(db.store(), 10, 5);
  append_many(db.store(), 1, 1, "Poison");
  auto live = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v1"));
  live.run_until_idle();
  live.release_leases();
  const auto s = q(db);
  const auto before = live.status("counts");

  SUBCASE("a handler that stops on an event") {
    auto cli = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v2", true, "Poison"),
                            small_batches(FailurePolicy::kStop));
    try {
      cli.rebuild_shadow("counts");
      FAIL("the rebuild should have failed");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kHandlerFailed);
      CHECK(std::string(e.what()).find("refusing Poison") != std::string::npos);
      CHECK(std::string(e.what()).find("live read model is untouched") != std::string::npos);
    }
    CHECK(cli.cancel_shadow_rebuild("counts"));
  }
  SUBCASE("a view over the live model the handler does not create") {
    {
      auto conn = db.raw();
      pqxx::nontransaction(conn).exec("create view " + s + ".sc_report as select n from " + s +
                                      ".sc_counts");
    }
    auto cli = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v2"));
    try {
      cli.rebuild_shadow("counts");
      FAIL("the swap should have been refused");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kInvalidArgument);
      CHECK(std::string(e.what()).find("sc_report") != std::string::npos);
    }
    CHECK(scalar(db, "select count(*) from " + s + ".sc_report") == 11);
    CHECK(cli.cancel_shadow_rebuild("counts"));
  }
  SUBCASE("a handler that does not support shadow rebuilds is refused before any write") {
    const auto schemas = [&] {
      return scalar(db, "select count(*) from pg_namespace where nspname like 'rillflow_shadow_%'");
    };
    const auto schemas_before = schemas();
    auto cli = runtime_with(db, "counts", std::make_shared<ShadowCounts>("v2", false));
    CHECK_THROWS_AS(cli.rebuild_shadow("counts"), Error);
    CHECK(shadow_units(db) == 0);
    CHECK(schemas() == schemas_before);
    CHECK_THROWS_AS(cli.rebuild_shadow("not-registered"), NotFound);
  }
  const auto after = live.status("counts");
  CHECK(after->position == before->position);
  CHECK(after->last_global_seq == before->last_global_seq);
  CHECK(after->paused == before->paused);
  CHECK_FALSE(after->lease_owner);
  CHECK(shadow_units(db) == 0);
  check_equals_fresh_build(db, "v1");
}

TEST_CASE("hostile_projection_names_never_reach_sql_text_and_a_paused_projection_stays_paused") {
  TestSchema db;
  append_many(db.store(), 4, 5);
  const std::string name = "x\"; drop table events; --'";
  auto live = runtime_with(db, name, std::make_shared<ShadowCounts>("v1"));
  live.run_until_idle();
  live.pause(name);
  live.release_leases();
  auto cli = runtime_with(db, name, std::make_shared<ShadowCounts>("v2"));
  const auto report = cli.rebuild_shadow(name);
  CHECK(report.swapped);
  check_equals_fresh_build(db, "v2");
  CHECK(cli.status(name)->paused);  // the operator's flag survives the swap
  CHECK(shadow_units(db) == 0);
}

TEST_CASE("a_lagging_live_projection_and_events_appended_during_the_swap_are_handled_once") {
  TestSchema db;
  append_many(db.store(), 20, 10);
  const auto s = q(db);
  // Unqualified names: the shadow's search_path starts with the shadow schema.
  const auto unqualified = [] { return std::make_shared<ShadowCounts>("v1", true, "", false); };
  auto live = runtime_with(db, "counts", unqualified());
  REQUIRE(live.tick_once("counts").processed == 40);  // live lags: 160 events behind
  live.release_leases();

  auto cli = runtime_with(db, "counts",
                          std::make_shared<ShadowCounts>("v2", true, "", false));
  // Once the rebuild took the live projection over (paused it), events are appended: they reach
  // the new model once, through the last catch-up or, committed after it, through the live
  // projection continuing from the shadow's checkpoint.
  std::atomic<bool> appended{false}, finished{false};
  std::thread appender;
  ShadowRebuildOptions options;
  options.on_progress = [&](const ShadowRebuildProgress&) {
    if (appender.joinable()) return;
    appender = std::thread([&] {
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < deadline && !finished &&
             !live.status("counts")->paused)
        std::this_thread::sleep_for(1ms);
      append_many(db.store(), 1, 7);
      appended = true;
    });
  };
  const auto report = cli.rebuild_shadow("counts", options);
  finished = true;
  REQUIRE(appender.joinable());
  appender.join();
  CHECK(appended);
  CHECK(report.swapped);
  CHECK(report.parked == 0);
  CHECK_FALSE(cli.status("counts")->paused);
  CHECK(cli.run_until_idle().parked == 0);  // whatever the swap left for the live projection
  check_equals_fresh_build(db, "v2");
  CHECK(cli.dlq_list("counts").empty());
  CHECK(cli.status("counts")->last_global_seq == db.store().events().head());
}
