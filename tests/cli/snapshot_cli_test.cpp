// rillflow snapshots ...: folders from --config, clear errors for a bad config, one JSON
// document with --json, status and list.
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

util::ProcessResult snapshots(const TestSchema& db, const std::string& config,
                              std::vector<std::string> args) {
  std::vector<std::string> argv{"env", "-u", "RILLFLOW_CONFIG", RILLFLOW_CLI_PATH, "snapshots"};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const auto& a :
       {std::string("--database-url"), db.url(), std::string("--schema"), db.name()}) {
    argv.push_back(a);
  }
  if (!config.empty()) {
    argv.push_back("--config");
    argv.push_back(config);
  }
  return util::run_process(argv);
}

std::string write_config(const TestSchema& db, const std::string& body) {
  const std::string path = "/tmp/rillflow-snapshots-" + db.name() + ".yaml";
  std::ofstream(path) << body;
  return path;
}

void fill(Store& store, const Uuid& id, int n) {
  std::vector<Event> events{Event("OrderPlaced", parse_json(R"({"customer":"ada","total":9})"))};
  for (int i = 1; i < n; ++i) events.emplace_back("OrderPaid", parse_json(R"({"amount":1})"));
  store.events().append_stream(id, Expected::any(), events);
}

}  // namespace

TEST_CASE("cli_snapshots_compact_with_the_configured_folder_and_report_status") {
  TestSchema db;
  const auto a = db.store().resolve_stream_alias("orders:1");
  const auto b = db.store().resolve_stream_alias("orders:2");
  fill(db.store(), a, 30);
  fill(db.store(), b, 12);
  const auto config =
      write_config(db, std::string("snapshotters:\n  - name: orders\n    plugin: ") +
                           RILLFLOW_ORDER_FOLDER_PLUGIN +
                           "\n    threshold: 200\n    stream_prefix: 'orders:'\n");
  // The config's threshold (200): nothing is due.
  auto r = snapshots(db, config, {"compact-once"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, "orders: 0 candidate(s), 0 snapshot(s) written"));
  // --threshold overrides it; --json prints exactly one JSON document.
  r = snapshots(db, config, {"compact-once", "--threshold", "10", "--batch", "1", "--json"});
  CAPTURE(r.output);
  REQUIRE(r.exit_code == 0);
  const auto doc = parse_json(r.output);
  CHECK(doc.at("written").as_int64() == 1);
  CHECK(doc.at("snapshotters").at(0).at("name").as_string() == "orders");
  CHECK(doc.at("snapshotters").at(0).at("max_events_since_snapshot").as_int64() == 30);
  r = snapshots(db, config, {"run-until-idle", "--threshold", "10", "--json"});
  REQUIRE(r.exit_code == 0);
  CHECK(parse_json(r.output).at("written").as_int64() == 1);

  r = snapshots(db, "", {"status", "orders:2"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, to_string(b) + " (orders:2): version 12, snapshot version 12, 0 event(s) "
                                     "since, size "));
  r = snapshots(db, "", {"status", to_string(a), "--json"});
  CHECK(r.exit_code == 0);
  const auto st = parse_json(r.output);
  CHECK(st.at("snapshot_version").as_int64() == 30);
  CHECK(st.at("size_bytes").as_int64() > 0);
  r = snapshots(db, "", {"status", "orders:404"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "no stream alias 'orders:404'"));
  r = snapshots(db, "", {"list", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).as_array().size() == 2);
  r = snapshots(db, "", {"list"});
  CHECK(has(r.output, "(orders:1): version 30, snapshot version 30"));
}

TEST_CASE("cli_snapshots_report_a_failing_fold_and_exit_1") {
  TestSchema db;
  const auto id = db.store().resolve_stream_alias("orders:1");
  std::vector<Event> events{Event("OrderPlaced", parse_json(R"({"total":5})"))};
  for (int i = 0; i < 5; ++i) events.emplace_back("OrderPaid", parse_json(R"({"amount":1})"));
  db.store().events().append_stream(id, Expected::any(), events);
  // A stored snapshot the example folder cannot read ("total" is text), written behind the
  // library's back.
  {
    auto conn = db.raw();
    pqxx::nontransaction(conn).exec_params(
        "insert into \"" + db.name() +
            "\".snapshots (stream_id, version, body) values ($1::uuid, 1, '{\"total\":\"x\"}')",
        to_string(id));
  }
  const auto config =
      write_config(db, std::string("snapshotters:\n  - name: orders\n    plugin: ") +
                           RILLFLOW_ORDER_FOLDER_PLUGIN + "\n    threshold: 2\n");
  const auto r = snapshots(db, config, {"run-until-idle"});
  CAPTURE(r.output);
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "1 failed"));
  CHECK(has(r.output, "failed " + to_string(id) + " at version 6"));
}

TEST_CASE("cli_snapshots_without_folders_or_with_a_bad_config_say_what_is_wrong") {
  TestSchema db;
  // No config: exit 1, saying what to pass.
  auto r = snapshots(db, "", {"compact-once", "--threshold", "200", "--batch", "200"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "pass --config"));
  CHECK(has(r.output, "snapshotters:"));
  // A plugin path that does not exist.
  auto config =
      write_config(db, "snapshotters:\n  - name: orders\n    plugin: /nonexistent/f.so\n");
  r = snapshots(db, config, {"run-until-idle"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "/nonexistent/f.so: no such file"));
  // A library without a folder entry (a projection plugin).
  config = write_config(db, std::string("snapshotters:\n  - name: orders\n    plugin: ") +
                                RILLFLOW_ORDER_TOTALS_PLUGIN + "\n");
  r = snapshots(db, config, {"compact-once"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "has no aggregate folder"));
  // An unknown snapshotter name.
  config = write_config(db, std::string("snapshotters:\n  - name: orders\n    plugin: ") +
                                RILLFLOW_ORDER_FOLDER_PLUGIN + "\n");
  r = snapshots(db, config, {"compact-once", "--name", "carts"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "no snapshotter 'carts'"));
  CHECK(has(r.output, "configured: orders"));
  // Config mistakes name the key.
  config = write_config(db, "snapshotters:\n  - name: orders\n    plugin: x.so\n    treshold: 5\n");
  r = snapshots(db, config, {"compact-once"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "snapshotters[0].treshold"));
  config = write_config(db, "snapshotters:\n  - name: orders\n");
  r = snapshots(db, config, {"compact-once"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "needs a plugin path"));
  // Bad numbers are usage errors.
  r = snapshots(db, "", {"compact-once", "--threshold", "0"});
  CHECK(r.exit_code == 2);
}
