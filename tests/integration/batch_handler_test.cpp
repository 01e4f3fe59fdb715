// Batch handlers: ProjectionHandler::apply_batch on the runtime's fast path, the per-event
// fallback under savepoints, and plugins of ABI 2 (apply_batch entry) and ABI 1 (none).
#include "plugin/plugin_loader.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <map>
#include <set>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

std::int64_t count(pqxx::connection& conn, const std::string& sql) {
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

void append_ticks(Store& store, int streams, int per_stream) {
  for (int s = 0; s < streams; ++s) {
    std::vector<Event> batch;
    for (int i = 0; i < per_stream; ++i) batch.emplace_back("Ticked", boost::json::object{});
    store.events().append_stream(new_uuid(), Expected::no_stream(), batch);
  }
}

// Records what the runtime hands it; writes nothing.
class Recorder : public ProjectionHandler {
 public:
  void apply(const EventEnvelope& e, Transaction&) override { singles.push_back(e.type); }
  void apply_batch(const EventBatch& events, Transaction&) override {
    std::vector<std::string> types;
    for (const auto& e : events) types.push_back(e.type);
    batches.push_back(types);
  }
  std::vector<std::vector<std::string>> batches;
  std::vector<std::string> singles;
};

}  // namespace

TEST_CASE("the_runtime_hands_a_batch_handler_each_batch_once_with_the_wanted_events") {
  TestSchema db;
  auto events = db.store().events();
  std::vector<Event> batch;
  for (int i = 0; i < 25; ++i) batch.emplace_back(i % 5 == 0 ? "Other" : "Wanted", Json());
  events.append_stream(new_uuid(), Expected::no_stream(), batch);
  auto recorder = std::make_shared<Recorder>();
  ProjectionOptions o;
  o.event_types = {"Wanted"};
  o.batch_size = 10;
  auto d = ProjectionDaemon::builder(db.store()).register_projection("rec", recorder, o).build();
  CHECK(d.run_until_idle() == 25);
  CHECK(recorder->singles.empty());
  REQUIRE(recorder->batches.size() == 3);  // 10 + 10 + 5 events, the "Other" ones filtered out
  CHECK(recorder->batches[0].size() == 8);
  CHECK(recorder->batches[1].size() == 8);
  CHECK(recorder->batches[2].size() == 4);
  for (const auto& b : recorder->batches) {
    for (const auto& t : b) CHECK(t == "Wanted");
  }
}

TEST_CASE("stream_counts_batched_and_per_event_give_the_same_read_model") {
  TestSchema db;
  for (int round = 0; round < 3; ++round) append_ticks(db.store(), 40, 1 + round * 7);
  auto batched = plugin::load_projection_plugin(
      RILLFLOW_STREAM_COUNTS_PLUGIN, boost::json::object{{"table", "counts_b"}, {"batch", true}});
  auto single = plugin::load_projection_plugin(
      RILLFLOW_STREAM_COUNTS_PLUGIN, boost::json::object{{"table", "counts_e"}, {"batch", false}});
  CHECK(batched->info().name == "stream_counts");
  auto d = ProjectionDaemon::builder(db.store())
               .batch_size(64)  // batches that cut through streams
               .register_projection("batched", batched)
               .register_projection("single", single)
               .build();
  const std::int64_t total = 40 * (1 + 8 + 15);
  CHECK(d.run_until_idle() == static_cast<std::size_t>(2 * total));
  auto conn = db.raw();
  const std::string s = "\"" + db.name() + "\"";
  const auto rows = [&](const std::string& table) {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> out;
    for (const auto& r : pqxx::nontransaction(conn).exec(
             "select stream_id::text, events, last_global_seq from " + s + "." + table)) {
      out[r[0].as<std::string>()] = {r[1].as<std::int64_t>(), r[2].as<std::int64_t>()};
    }
    return out;
  };
  const auto b = rows("counts_b");
  CHECK(b.size() == 120);
  CHECK(b == rows("counts_e"));
  // ... and both are the truth.
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> truth;
  for (const auto& r : pqxx::nontransaction(conn).exec(
           "select stream_id::text, count(*), max(global_seq) from " + s + ".events group by 1")) {
    truth[r[0].as<std::string>()] = {r[1].as<std::int64_t>(), r[2].as<std::int64_t>()};
  }
  CHECK(b == truth);
  CHECK(count(conn, "select sum(events) from " + s + ".counts_b") == total);

  // Unknown settings are errors.
  try {
    plugin::load_projection_plugin(RILLFLOW_STREAM_COUNTS_PLUGIN,
                                   boost::json::object{{"batchh", true}});
    FAIL("an unknown setting was accepted");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find("settings.batchh") != std::string::npos);
  }
}

TEST_CASE("a_poison_event_in_a_batch_is_parked_and_the_rest_applied_once") {
  TestSchema db;
  auto handler = plugin::load_projection_plugin(
      RILLFLOW_COUNTING_PLUGIN, boost::json::object{{"table", "rows"}, {"fail_type", "Poison"}});
  ProjectionOptions o;
  o.max_attempts = 1;
  auto d = ProjectionDaemon::builder(db.store()).register_projection("rows", handler, o).build();
  auto conn = db.raw();
  const std::string t = "\"" + db.name() + "\".rows";

  append_ticks(db.store(), 3, 10);  // a clean batch: written by the plugin's apply_batch (ABI 2)
  CHECK(d.run_until_idle() == 30);
  CHECK(count(conn, "select count(*) from " + t + " where via = 'batch'") == 30);

  auto events = db.store().events();
  const auto poisoned = new_uuid();
  events.append_stream(poisoned, Expected::no_stream(),
                       {Event("Ticked", Json()), Event("Poison", Json()), Event("Ticked", Json())});
  append_ticks(db.store(), 2, 5);
  const auto report = d.run_until_idle();
  CHECK(report.processed == 13);
  CHECK(report.parked == 1);
  // The batch was redone event by event: every good event once (global_seq is the key), the
  // poison one parked by name.
  CHECK(count(conn, "select count(*) from " + t) == 42);
  CHECK(count(conn, "select count(*) from " + t + " where event_type = 'Poison'") == 0);
  CHECK(count(conn, "select count(*) from " + t + " where via = 'apply'") == 12);
  const auto dlq = d.dlq_list("rows");
  REQUIRE(dlq.size() == 1);
  CHECK(dlq[0].event.type == "Poison");
  CHECK(dlq[0].event.stream_id == poisoned);
  CHECK(dlq[0].error.find("refusing Poison") != std::string::npos);

  append_ticks(db.store(), 1, 4);  // the next batch takes the fast path again
  CHECK(d.run_until_idle() == 4);
  CHECK(count(conn, "select count(*) from " + t + " where via = 'batch'") == 34);
}

TEST_CASE("a_plugin_built_for_abi_1_still_loads_and_applies_event_by_event") {
  TestSchema db;
  auto handler = plugin::load_projection_plugin(RILLFLOW_ABI1_PLUGIN, boost::json::object{});
  CHECK(handler->info().name == "abi1");
  CHECK_FALSE(handler->supports_shadow_rebuild());  // no capabilities field before ABI 3
  CHECK(handler->info().version == "0.9.0");
  append_ticks(db.store(), 4, 6);
  auto d = ProjectionDaemon::builder(db.store()).register_projection("old", handler).build();
  CHECK(d.run_until_idle() == 24);
  auto conn = db.raw();
  CHECK(count(conn, "select count(distinct global_seq) from \"" + db.name() + "\".abi1_rows") ==
        24);
  d.rebuild("old");
  CHECK(count(conn, "select count(*) from \"" + db.name() + "\".abi1_rows") == 0);
}
