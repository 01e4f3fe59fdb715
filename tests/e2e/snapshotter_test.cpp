// rillflowd's snapshotters end to end: the real binary with the example order folder plugin,
// against real PostgreSQL.
#include "support/daemon_process.hpp"
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <rillflow/snapshots/snapshot_catalog.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>

using namespace rillflow;
using namespace rillflow::e2e;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

std::string config_yaml(const TestSchema& db, const std::string& snapshotters) {
  return "database: {url_env: RF_E2E_DB_URL, require_url: true}\n"
         "schema: " +
         db.name() +
         "\n"
         "http: {bind: 127.0.0.1, port: 0}\n"
         "daemon: {lease_ttl_ms: 2000, poll_interval_ms: 100}\n" +
         snapshotters;
}

std::string orders_snapshotter(const std::string& name = "orders") {
  return "  - name: " + name +
         "\n    plugin: " RILLFLOW_ORDER_FOLDER_PLUGIN
         "\n    threshold: 10\n    interval_ms: 100\n    stream_prefix: 'orders:'\n";
}

std::vector<std::string> env_for(const TestSchema& db) {
  return {"RF_E2E_DB_URL=" + db.url()};
}

void fill(Store& store, const Uuid& id, int n) {
  std::vector<Event> events{Event("OrderPlaced", parse_json(R"({"customer":"ada","total":9})"))};
  for (int i = 1; i < n; ++i) events.emplace_back("OrderPaid", parse_json(R"({"amount":1})"));
  store.events().append_stream(id, Expected::any(), events);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The snapshotter entries of a node's /status (empty when it does not answer).
boost::json::array snapshotters(DaemonProcess& d) {
  const auto reply = http_get(d.port(), "/status");
  if (reply.status != 200) return {};
  return parse_json(reply.body).at("snapshotters").as_array();
}

std::size_t live_nodes(DaemonProcess& d) {
  const auto reply = http_get(d.port(), "/status");
  if (reply.status != 200) return 0;
  return parse_json(reply.body).at("live_nodes").as_array().size();
}

bool assigned(DaemonProcess& d, const std::string& name) {
  for (const auto& s : snapshotters(d)) {
    if (s.at("name").as_string() == name) return s.at("assigned").as_bool();
  }
  return false;
}

// The value of one series in a /metrics scrape (-1 when absent).
double metric(DaemonProcess& d, const std::string& series) {
  const auto body = http_get(d.port(), "/metrics").body;
  const auto at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

}  // namespace

TEST_CASE("daemon_snapshotter_writes_a_snapshot_at_the_stream_version_and_reports_it") {
  TestSchema db;
  const auto config =
      write_temp("snap.yaml", config_yaml(db, "snapshotters:\n" + orders_snapshotter()));
  DaemonProcess d(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(d.wait_ready());
  const auto order = db.store().resolve_stream_alias("orders:1");
  const auto other = db.store().resolve_stream_alias("carts:1");  // outside the stream filter
  fill(db.store(), order, 25);
  fill(db.store(), other, 25);
  const SnapshotCatalog catalog(db.store());
  CHECK(eventually([&] { return catalog.status(order)->snapshot_version == 25; }, 30s));
  const auto st = catalog.status(order);
  REQUIRE(st);
  CHECK(st->version == 25);
  CHECK(st->size_bytes > 0);
  CHECK(catalog.status(other)->snapshot_version == 0);

  CHECK(eventually(
      [&] {
        return contains(http_get(d.port(), "/metrics").body,
                        "rillflow_snapshots_written_total{snapshotter=\"orders\"} 1");
      },
      10s));
  const auto metrics = http_get(d.port(), "/metrics").body;
  for (const char* name :
       {"rillflow_snapshotter_runs_total", "rillflow_snapshotter_candidates_total",
        "rillflow_snapshotter_failures_total", "rillflow_snapshotter_run_duration_seconds_bucket",
        "rillflow_snapshotter_max_events_since_snapshot"}) {
    CAPTURE(name);
    CHECK(contains(metrics, std::string("\n") + name + "{snapshotter=\"orders\""));
  }
  CHECK(contains(metrics, "rillflow_snapshotter_candidates_total{snapshotter=\"orders\"} 1"));
  CHECK(contains(metrics, "rillflow_snapshotter_failures_total{snapshotter=\"orders\"} 0"));
  const auto file = write_temp("snap-metrics.txt", metrics);
  const auto check =
      util::run_process({"sh", "-c", std::string(RILLFLOW_PROMTOOL) + " check metrics < " + file});
  CAPTURE(check.output);
  CHECK(check.exit_code == 0);
  std::remove(file.c_str());

  // /status lists it: assigned here, with its last run.
  REQUIRE(eventually([&] { return !snapshotters(d).empty(); }, 5s));
  const auto s = snapshotters(d).at(0).as_object();
  CAPTURE(boost::json::serialize(s));
  CHECK(s.at("name").as_string() == "orders");
  CHECK(s.at("kind").as_string() == "snapshotter");
  CHECK(s.at("assigned").as_bool());
  CHECK(s.at("interval_ms").as_int64() == 100);
  CHECK(s.at("last_run_at").is_string());
  CHECK(s.at("last_report").is_object());
  CHECK(s.at("last_error").is_null());
  CHECK(parse_json(http_get(d.port(), "/status").body).at("projections").as_array().empty());

  // More events: the next snapshot is at the new version.
  fill(db.store(), order, 12);
  CHECK(eventually([&] { return catalog.status(order)->snapshot_version == 37; }, 30s));
  d.signal(SIGTERM);
  CHECK(d.wait_exit(15s) == 0);
}

TEST_CASE("two_daemons_with_one_snapshotter_assign_it_to_exactly_one") {
  TestSchema db;
  const auto config =
      write_temp("snap2.yaml", config_yaml(db, "snapshotters:\n" + orders_snapshotter()));
  DaemonProcess a(RILLFLOWD_PATH, config, env_for(db));
  DaemonProcess b(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(a.wait_ready());
  REQUIRE(b.wait_ready());
  // Both see each other, and exactly one reports the snapshotter as its own.
  CHECK(eventually(
      [&] {
        return live_nodes(a) == 2 && live_nodes(b) == 2 &&
               assigned(a, "orders") != assigned(b, "orders");
      },
      20s));
  const auto order = db.store().resolve_stream_alias("orders:7");
  fill(db.store(), order, 15);
  const SnapshotCatalog catalog(db.store());
  CHECK(eventually([&] { return catalog.status(order)->snapshot_version == 15; }, 30s));
  auto& runner = assigned(a, "orders") ? a : b;
  auto& other = &runner == &a ? b : a;
  CHECK(contains(http_get(runner.port(), "/metrics").body,
                 "rillflow_snapshots_written_total{snapshotter=\"orders\"} 1"));
  // The other may have run (empty) rounds before the two saw each other, when a node runs every
  // unit; it never wrote a snapshot: the stream filled after they agreed.
  CHECK(contains(http_get(other.port(), "/metrics").body,
                 "rillflow_snapshots_written_total{snapshotter=\"orders\"} 0"));
  // The runner leaves: the other takes the snapshotter over.
  runner.signal(SIGTERM);
  CHECK(runner.wait_exit(15s) == 0);
  CHECK(eventually([&] { return assigned(other, "orders"); }, 15s));
  fill(db.store(), order, 10);
  CHECK(eventually([&] { return catalog.status(order)->snapshot_version == 25; }, 30s));
}

TEST_CASE("sighup_adds_and_removes_snapshotters") {
  TestSchema db;
  const auto config = write_temp("snap-reload.yaml", config_yaml(db, ""));
  DaemonProcess d(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(d.wait_ready());
  CHECK(snapshotters(d).empty());
  write_temp("snap-reload.yaml", config_yaml(db, "snapshotters:\n" + orders_snapshotter()));
  d.signal(SIGHUP);
  CHECK(eventually([&] { return contains(d.log(), "reloaded: 0 projection(s), 1 snapshotter(s)"); },
                   10s));
  const auto order = db.store().resolve_stream_alias("orders:3");
  fill(db.store(), order, 11);
  const SnapshotCatalog catalog(db.store());
  CHECK(eventually([&] { return catalog.status(order)->snapshot_version == 11; }, 30s));
  CHECK(eventually([&] { return snapshotters(d).size() == 1; }, 5s));

  write_temp("snap-reload.yaml", config_yaml(db, ""));
  d.signal(SIGHUP);
  CHECK(eventually([&] { return contains(d.log(), "reloaded: 0 projection(s), 0 snapshotter(s)"); },
                   10s));
  CHECK(eventually([&] { return snapshotters(d).empty(); }, 5s));
  d.signal(SIGTERM);
  CHECK(d.wait_exit(15s) == 0);
}

TEST_CASE("a_missing_folder_plugin_stops_the_start_with_its_path") {
  TestSchema db;
  const auto yaml =
      config_yaml(db, "snapshotters:\n  - name: orders\n    plugin: /nonexistent/libfolder.so\n");
  const auto path = write_temp("snap-bad.yaml", yaml);
  auto r = util::run_process({RILLFLOWD_PATH, "--config", path, "--check-config"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "/nonexistent/libfolder.so"));
  r = util::run_process({"env", "RF_E2E_DB_URL=" + db.url(), RILLFLOWD_PATH, "--config", path});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "/nonexistent/libfolder.so"));
}

TEST_CASE("a_failing_folder_is_reported_and_retried_only_at_the_next_interval") {
  TestSchema db;
  const auto config = write_temp(
      "snap-fail.yaml",
      config_yaml(db, "snapshotters:\n  - name: mixed\n    plugin: " RILLFLOW_FAILING_FOLDER_PLUGIN
                      "\n    threshold: 5\n    interval_ms: 400\n"
                      "    settings: {fail_type: Poison}\n"));
  DaemonProcess d(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(d.wait_ready());
  const auto bad = db.store().resolve_stream_alias("orders:bad");
  const auto good = db.store().resolve_stream_alias("orders:good");
  fill(db.store(), bad, 10);
  db.store().events().append_stream(bad, Expected::any(),
                                    std::vector<Event>{Event("Poison", parse_json("{}"))});
  fill(db.store(), good, 6);
  const SnapshotCatalog catalog(db.store());
  // The good stream is compacted although the bad one fails every run.
  CHECK(eventually([&] { return catalog.status(good)->snapshot_version == 6; }, 30s));
  CHECK(catalog.status(bad)->snapshot_version == 0);
  REQUIRE(eventually(
      [&] {
        const auto s = snapshotters(d);
        return !s.empty() && s.at(0).at("last_error").is_string() &&
               contains(std::string(s.at(0).at("last_error").as_string()), "refusing Poison");
      },
      10s));
  CHECK(contains(d.log(), "refusing Poison"));
  // Not a tight loop: three more runs take at least two intervals (the poll timer alone would allow
  // 0.3 s), with one failure per run.
  const std::string runs = "rillflow_snapshotter_runs_total{snapshotter=\"mixed\"}";
  const std::string failures = "rillflow_snapshotter_failures_total{snapshotter=\"mixed\"}";
  const double before = metric(d, runs);
  REQUIRE(before >= 1);
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return metric(d, runs) >= before + 3; }, 30s));
  CHECK(std::chrono::steady_clock::now() - started >= 700ms);  // 800 ms less run-time jitter
  const double total_runs = metric(d, runs);
  const double total_failures = metric(d, failures);
  CHECK(total_failures >= before);
  CHECK(total_failures <= total_runs + 1);  // a scrape may fall between two counters' updates
  d.signal(SIGTERM);
  CHECK(d.wait_exit(15s) == 0);
}
