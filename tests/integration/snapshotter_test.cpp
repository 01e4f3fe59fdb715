// Snapshotter: candidates through the lag index, real folded state at exactly its version (also
// under concurrent appends), termination with failing folders, one compactor per name (lease),
// and the aggregate folder plugin entry.
#include "db/sql.hpp"
#include "order_folder/order.hpp"
#include "plugin/plugin_loader.hpp"
#include "snapshots/snapshot_sql.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

#include <atomic>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace snapshotter_test {

struct Tally {
  std::int64_t sum = 0;
  std::int64_t count = 0;
  std::int64_t v = 0;
  void apply(const EventEnvelope& e) {
    sum += e.body.is_int64() ? e.body.as_int64() : 0;
    ++count;
    v = e.stream_seq;
  }
  std::int64_t version() const { return v; }
};
BOOST_DESCRIBE_STRUCT(Tally, (), (sum, count, v))

// Appends `n` events (bodies 1..n after `first`) to `id` in batches of 100.
void append(Store& store, const Uuid& id, int n, int first = 0) {
  for (int done = 0; done < n;) {
    std::vector<Event> batch;
    for (int i = 0; i < 100 && done < n; ++i, ++done) batch.emplace_back("Added", first + done + 1);
    store.events().append_stream(id, Expected::any(), std::move(batch));
  }
}

struct Stored {
  std::int64_t version = 0;
  Json body;
  std::int64_t stream_snapshot_version = 0;
};

std::optional<Stored> stored(TestSchema& db, const Uuid& id) {
  auto conn = db.raw();
  pqxx::nontransaction txn(conn);
  const auto r = txn.exec_params("select n.version, n.body::text, s.snapshot_version from \"" +
                                     db.name() + "\".snapshots n join \"" + db.name() +
                                     "\".streams s using (stream_id) where stream_id = $1::uuid",
                                 to_string(id));
  if (r.empty()) return std::nullopt;
  return Stored{r[0][0].as<std::int64_t>(), parse_json(r[0][1].c_str()),
                r[0][2].as<std::int64_t>()};
}

// The state folded from events 1..version, read independently of the snapshotter.
Json full_fold(Store& store, const Uuid& id, std::int64_t version) {
  Tally t;
  for (const auto& e : store.events().read_stream(id, {1, static_cast<std::size_t>(version)}))
    t.apply(e);
  REQUIRE(t.version() == version);
  return json_from(t);
}

// A folder that throws for chosen streams (and counts its calls).
class PickyFolder final : public SnapshotFolder {
 public:
  explicit PickyFolder(std::set<Uuid> bad) : bad_(std::move(bad)) {}
  Json fold(const Json* state, std::span<const EventEnvelope> events) override {
    ++calls;
    if (bad_.contains(events.front().stream_id) || bad_all) throw std::runtime_error("bad data");
    return inner_.fold(state, events);
  }
  std::atomic<int> calls{0};
  bool bad_all = false;

 private:
  std::set<Uuid> bad_;
  AggregateFolder<Tally> inner_;
};

// Records which streams are being folded, across instances, to catch two at once.
struct Observer {
  std::mutex mutex;
  std::map<Uuid, int> in_flight, folds;
  int overlaps = 0;
};

class ObservedFolder final : public SnapshotFolder {
 public:
  explicit ObservedFolder(Observer& o) : o_(o) {}
  Json fold(const Json* state, std::span<const EventEnvelope> events) override {
    const auto id = events.front().stream_id;
    {
      std::lock_guard lock(o_.mutex);
      if (++o_.in_flight[id] > 1) ++o_.overlaps;
      ++o_.folds[id];
    }
    std::this_thread::yield();  // widen the window a second folder would have to overlap in
    auto out = inner_.fold(state, events);
    std::lock_guard lock(o_.mutex);
    --o_.in_flight[id];
    return out;
  }

 private:
  Observer& o_;
  AggregateFolder<Tally> inner_;
};

SnapshotterConfig tally_config(std::int64_t threshold, std::size_t batch,
                               std::string name = "tally") {
  SnapshotterConfig c;
  c.threshold_events = threshold;
  c.batch_size = batch;
  c.name = std::move(name);
  return c;
}

}  // namespace snapshotter_test

using namespace snapshotter_test;

TEST_CASE("snapshotter_writes_the_real_folded_state_at_exactly_the_streams_version") {
  TestSchema db;
  auto& store = db.store();
  const Uuid due = new_uuid(), also_due = new_uuid(), short_one = new_uuid();
  append(store, due, 250);
  append(store, also_due, 1234);  // more than one fold chunk
  append(store, short_one, 150);
  Snapshotter s(store, std::make_shared<AggregateFolder<Tally>>(), tally_config(200, 10));
  const auto r = s.compact_once();
  CHECK(r.candidates == 2);
  CHECK(r.written == 2);
  CHECK(r.failures.empty());
  CHECK(r.events_folded == 250 + 1234);
  CHECK(r.max_events_since_snapshot == 1234);
  for (const auto& [id, version] : {std::pair{due, 250}, std::pair{also_due, 1234}}) {
    const auto snap = stored(db, id);
    REQUIRE(snap);
    CHECK(snap->version == version);
    CHECK(snap->stream_snapshot_version == version);
    CHECK(snap->body == full_fold(store, id, version));
    CHECK(snap->body.at("count").as_int64() == version);
  }
  CHECK_FALSE(stored(db, short_one));
  // The repository reads what the snapshotter wrote, and continues from it.
  const AggregateRepository<Tally> repo(store);
  CHECK(json_from(repo.load_with_snapshot(also_due)) == json_from(repo.load(also_due)));
  append(store, due, 10, 250);
  CHECK(json_from(repo.load_with_snapshot(due)) == json_from(repo.load(due)));
  // Nothing is due any more until another threshold of events arrives.
  CHECK(s.compact_once().candidates == 0);
  append(store, due, 200, 260);
  const auto again = s.compact_once();
  CHECK(again.candidates == 1);
  CHECK(again.events_folded == 210);  // from the snapshot on, not from the first event
  CHECK(stored(db, due)->body == full_fold(store, due, 460));
}

TEST_CASE("snapshots_written_by_commit_and_snapshot_keep_the_candidate_column_current") {
  TestSchema db;
  const AggregateRepository<Tally> repo(db.store());
  const auto id = new_uuid();
  Tally t;
  for (int i = 0; i < 3; ++i) {
    std::vector<Event> events;
    for (int k = 0; k < 50; ++k) events.emplace_back("Added", 1);
    repo.commit_and_snapshot(id, t, std::move(events), 100);
    t = repo.load(id);
  }
  const auto snap = stored(db, id);
  REQUIRE(snap);
  CHECK(snap->version == 100);
  CHECK(snap->stream_snapshot_version == 100);
  Snapshotter s(db.store(), std::make_shared<AggregateFolder<Tally>>(), tally_config(100, 10));
  CHECK(s.compact_once().candidates == 0);  // 150 - 100 < 100
}

TEST_CASE("candidate_query_reads_the_lag_index_and_never_the_events_table") {
  TestSchema db;
  {
    auto conn = db.raw();
    pqxx::work txn(conn);
    // Many streams, few of them due: what a real store looks like.
    txn.exec("insert into \"" + db.name() +
             "\".streams (stream_id, version, snapshot_version) "
             "select gen_random_uuid(), 10 + (g % 50), 0 from generate_series(1, 20000) g");
    txn.exec("insert into \"" + db.name() +
             "\".streams (stream_id, version, snapshot_version) "
             "select gen_random_uuid(), 500, 0 from generate_series(1, 5) g");
    txn.exec("analyze \"" + db.name() + "\".streams");
    txn.commit();
  }
  auto conn = db.raw();
  pqxx::nontransaction txn(conn);
  const auto sql = db::with_schema(snapshots::kCandidatesSql, db::quote_ident(db.name()));
  std::string plan;
  for (const auto& row : txn.exec_params("explain " + sql, 200, "{}", "", 200)) {
    plan += std::string(row[0].c_str()) + "\n";
  }
  CAPTURE(plan);
  CHECK(plan.find("streams_snapshot_lag_idx") != std::string::npos);
  CHECK(plan.find(".events") == std::string::npos);
  CHECK(plan.find(" events ") == std::string::npos);
  CHECK(txn.exec_params(sql, 200, "{}", "", 200).size() == 5);
}

TEST_CASE("run_until_idle_ends_with_a_failing_folder_reporting_each_failure_once") {
  TestSchema db;
  auto& store = db.store();
  std::vector<Uuid> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(new_uuid());
    append(store, ids.back(), 30 + i);
  }
  auto folder = std::make_shared<PickyFolder>(std::set<Uuid>{ids[1], ids[4]});
  Snapshotter s(store, folder, tally_config(20, 2));  // several rounds
  const auto r = s.run_until_idle();
  CHECK(r.candidates == 7);
  CHECK(r.written == 5);
  REQUIRE(r.failures.size() == 2);
  std::set<Uuid> failed;
  for (const auto& f : r.failures) {
    failed.insert(f.stream_id);
    CHECK(f.error.find("bad data") != std::string::npos);
  }
  CHECK(failed == std::set<Uuid>{ids[1], ids[4]});
  CHECK(folder->calls == 7);  // each stream once; the failing ones not retried
  CHECK_FALSE(stored(db, ids[1]));
  CHECK(stored(db, ids[0]));

  // A folder that fails on everything: still ends, each stream tried once per call.
  folder->bad_all = true;
  folder->calls = 0;
  const auto again = s.run_until_idle();
  CHECK(again.candidates == 2);  // only the two never snapshotted are still due
  CHECK(again.failures.size() == 2);
  CHECK(folder->calls == 2);
  // The unit's row says what went wrong last (the runtime's work_units table, kind snapshotter).
  auto conn = db.raw();
  pqxx::nontransaction txn(conn);
  const auto row = txn.exec1("select last_error, lease_owner is null from \"" + db.name() +
                             "\".work_units where kind = 'snapshotter' and name = 'tally'");
  CHECK(std::string(row[0].c_str()).find("bad data") != std::string::npos);
  CHECK(row[1].as<bool>());  // released at the end of the call
}

TEST_CASE("a_folder_returning_no_state_is_a_failure_not_an_empty_snapshot") {
  TestSchema db;
  struct Empty final : SnapshotFolder {
    Json fold(const Json*, std::span<const EventEnvelope>) override {
      return boost::json::object();
    }
  };
  const auto id = new_uuid();
  append(db.store(), id, 5);
  Snapshotter s(db.store(), std::make_shared<Empty>(), tally_config(5, 5));
  const auto r = s.run_until_idle();
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].error.find("empty state") != std::string::npos);
  CHECK(r.written == 0);
  CHECK_FALSE(stored(db, id));
}

TEST_CASE("snapshots_equal_a_full_fold_at_their_version_while_writers_append") {
  TestSchema db;
  auto& store = db.store();
  std::vector<Uuid> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(new_uuid());
    append(store, ids.back(), 40);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> appended{0};
  std::thread writer([&] {
    auto w = db.builder().max_connections(2).build();
    for (int round = 0; !stop; ++round) {
      for (const auto& id : ids) {
        std::vector<Event> events;
        for (int k = 0; k < 3; ++k) events.emplace_back("Added", round * 10 + k);
        w.events().append_stream(id, Expected::any(), std::move(events));
        ++appended;
      }
    }
  });
  Snapshotter s(store, std::make_shared<AggregateFolder<Tally>>(), tally_config(10, 3));
  std::size_t written = 0;
  std::set<std::int64_t> versions;
  for (int i = 0; i < 15; ++i) {
    written += s.run_until_idle().written;
    for (const auto& id : ids) {
      const auto snap = stored(db, id);
      if (!snap) continue;
      versions.insert(snap->version);
      CHECK(snap->body.as_object().size() == 3);  // never empty
      CHECK(snap->body == full_fold(store, id, snap->version));
      CHECK(snap->stream_snapshot_version == snap->version);
    }
    // Let the writer get ahead again before the next pass (awaits a condition, no sleep).
    const int target = appended + 20;
    while (appended < target) std::this_thread::yield();
  }
  stop = true;
  writer.join();
  CHECK(written >= ids.size());
  CHECK(versions.size() > ids.size());  // snapshots moved while the writer appended
}

TEST_CASE("two_snapshotters_of_one_name_never_compact_a_stream_at_once") {
  TestSchema db;
  std::vector<Uuid> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(new_uuid());
    append(db.store(), ids.back(), 25);
  }
  Observer observer;
  std::latch start(2);
  CompactionReport reports[2];
  std::thread threads[2];
  for (int t = 0; t < 2; ++t) {
    threads[t] = std::thread([&, t] {
      auto store = db.builder().max_connections(2).build();
      auto c = tally_config(20, 5, "race");
      c.owner = "runtime-" + std::to_string(t);
      Snapshotter s(store, std::make_shared<ObservedFolder>(observer), c);
      start.arrive_and_wait();
      for (int i = 0; i < 5; ++i) {
        const auto r = s.run_until_idle();
        reports[t].written += r.written;
        reports[t].candidates += r.candidates;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(observer.overlaps == 0);
  CHECK(reports[0].written + reports[1].written == ids.size());
  for (const auto& id : ids) {
    CAPTURE(to_string(id));
    CHECK(observer.folds[id] == 1);  // one compaction per stream in all
    CHECK(stored(db, id)->version == 25);
  }
}

TEST_CASE("a_snapshotter_whose_lease_was_taken_over_writes_nothing") {
  TestSchema db;
  std::vector<Uuid> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(new_uuid());
    append(db.store(), ids.back(), 30);
  }
  auto other_store = db.builder().max_connections(2).build();
  auto bc = tally_config(20, 10, "fenced");
  bc.owner = "runtime-b";
  Snapshotter b(other_store, std::make_shared<AggregateFolder<Tally>>(), bc);
  CompactionReport b_report;
  // A's folder: on its first call A's lease expires and B takes the unit over and compacts.
  struct Hijack final : SnapshotFolder {
    std::function<void()> once;
    AggregateFolder<Tally> inner;
    Json fold(const Json* state, std::span<const EventEnvelope> events) override {
      if (once) std::exchange(once, nullptr)();
      return inner.fold(state, events);
    }
  };
  auto hijack = std::make_shared<Hijack>();
  hijack->once = [&] {
    auto conn = db.raw();
    pqxx::nontransaction(conn).exec(
        "update \"" + db.name() +
        "\".work_units set lease_expires_at = now() - interval '1 second' "
        "where kind = 'snapshotter' and name = 'fenced'");
    b_report = b.compact_once();
  };
  auto ac = tally_config(20, 10, "fenced");
  ac.owner = "runtime-a";
  Snapshotter a(db.store(), hijack, ac);
  const auto a_report = a.compact_once();
  CHECK(b_report.written == 3);
  CHECK(a_report.lease_lost);
  CHECK(a_report.written == 0);
  // While B holds the lease, A does nothing at all.
  hijack->once = nullptr;
  append(db.store(), ids[0], 30, 30);
  {
    auto conn = db.raw();
    pqxx::nontransaction(conn).exec("update \"" + db.name() +
                                    "\".work_units set lease_owner = 'runtime-b', "
                                    "lease_expires_at = now() + interval '1 hour' "
                                    "where kind = 'snapshotter' and name = 'fenced'");
  }
  const auto held = a.compact_once();
  CHECK(held.lease_held_elsewhere);
  CHECK(held.candidates == 0);
  CHECK(stored(db, ids[0])->version == 30);
}

TEST_CASE("a_stream_filter_limits_the_snapshotter_to_aliased_streams") {
  TestSchema db;
  auto& store = db.store();
  const auto order = store.resolve_stream_alias("orders:1");
  const auto cart = store.resolve_stream_alias("carts:1");
  const auto bare = new_uuid();
  for (const auto& id : {order, cart, bare}) append(store, id, 30);
  auto c = tally_config(20, 10);
  c.streams.alias_prefix = "orders:";
  Snapshotter s(store, std::make_shared<AggregateFolder<Tally>>(), c);
  CHECK(s.run_until_idle().written == 1);
  CHECK(stored(db, order));
  CHECK_FALSE(stored(db, cart));
  CHECK_FALSE(stored(db, bare));
}

TEST_CASE("snapshot_catalog_reports_version_snapshot_version_and_size") {
  TestSchema db;
  auto& store = db.store();
  const auto id = store.resolve_stream_alias("orders:7");
  append(store, id, 60);
  const SnapshotCatalog catalog(store);
  auto st = catalog.status(id);
  REQUIRE(st);
  CHECK(st->version == 60);
  CHECK(st->snapshot_version == 0);
  CHECK(st->size_bytes == 0);
  CHECK(st->alias == std::optional<std::string>("orders:7"));
  Snapshotter compactor(store, std::make_shared<AggregateFolder<Tally>>(), tally_config(50, 5));
  compactor.compact_once();
  st = catalog.status(id);
  CHECK(st->snapshot_version == 60);
  CHECK(st->events_since_snapshot == 0);
  CHECK(st->size_bytes > 0);
  CHECK(st->snapshot_at.has_value());
  CHECK_FALSE(catalog.status(new_uuid()));
  append(store, new_uuid(), 5);
  const auto all = catalog.list(10);
  REQUIRE(all.size() == 2);
  CHECK(all[0].events_since_snapshot == 5);  // largest backlog first
  CHECK(catalog.list(10, 1).size() == 1);
}

TEST_CASE("snapshotter_rejects_bad_settings") {
  TestSchema db;
  auto folder = std::make_shared<AggregateFolder<Tally>>();
  CHECK_THROWS_AS(Snapshotter(db.store(), nullptr, tally_config(1, 1)), Error);
  CHECK_THROWS_AS(Snapshotter(db.store(), folder, tally_config(0, 1)), Error);
  CHECK_THROWS_AS(Snapshotter(db.store(), folder, tally_config(1, 0)), Error);
  CHECK_THROWS_AS(Snapshotter(db.store(), folder, tally_config(1, 1, "")), Error);
}

TEST_CASE(
    "the_example_folder_plugin_folds_like_the_aggregate_and_projection_plugins_are_no_folders") {
  const auto folder =
      plugin::load_folder_plugin(RILLFLOW_ORDER_FOLDER_PLUGIN, boost::json::object());
  CHECK(folder->info().name == "order");
  TestSchema db;
  auto& store = db.store();
  const auto id = store.resolve_stream_alias("orders:42");
  store.events().append_stream(
      id, Expected::no_stream(),
      {Event("OrderPlaced", boost::json::object{{"customer", "ada"}, {"total", 99.5}}),
       Event("OrderPaid", boost::json::object{{"amount", 99.5}}),
       Event("OrderShipped", boost::json::object{{"carrier", "dhl"}})});
  auto c = tally_config(2, 10, "orders");
  Snapshotter s(store, folder, c);
  CHECK(s.compact_once().written == 1);
  const AggregateRepository<example::Order> repo(store);
  const auto loaded = repo.load_with_snapshot(id);
  CHECK(loaded.status == "shipped");
  CHECK(loaded.customer == "ada");
  CHECK(loaded.version() == 3);
  CHECK(json_from(loaded) == stored(db, id)->body);
  CHECK(json_from(loaded) == json_from(repo.load(id)));

  // The plugin's error crosses the boundary as a message.
  const auto events = store.events().read_stream(id, {1, 3});
  const Json not_an_order = boost::json::array{1, 2};
  CHECK_THROWS(folder->fold(&not_an_order, events));

  // A projection plugin has no folder entry; a missing file is named.
  try {
    plugin::load_folder_plugin(RILLFLOW_ORDER_TOTALS_PLUGIN, boost::json::object());
    FAIL("a projection plugin loaded as a folder");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find("has no aggregate folder") != std::string::npos);
  }
  try {
    plugin::load_folder_plugin("/nonexistent/folder.so", boost::json::object());
    FAIL("a missing plugin loaded");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find("no such file") != std::string::npos);
  }
  // Projection plugins built before folders existed load as before.
  CHECK(plugin::load_projection_plugin(RILLFLOW_ORDER_TOTALS_PLUGIN, boost::json::object()));
}
