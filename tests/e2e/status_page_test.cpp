// rillflowd for operators end to end: stalls explained (/status blocked_by and the
// rillflow_consumer_blocked_seconds gauge under a held append), and the status page at GET /
// rendered by a real browser (Debian's headless chromium).
#include "support/daemon_process.hpp"
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

using namespace rillflow;
using namespace rillflow::e2e;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

std::string config_yaml(const TestSchema& db) {
  return "database: {url_env: RF_E2E_DB_URL, require_url: true}\n"
         "schema: " +
         db.name() +
         "\n"
         "http: {bind: 127.0.0.1, port: 0}\n"
         "daemon: {lease_ttl_ms: 2000, poll_interval_ms: 100}\n"
         "projections:\n"
         "  - name: p_c1\n    plugin: " RILLFLOW_COUNTING_PLUGIN
         "\n    settings: {table: c1}\n"
         "snapshotters:\n"
         "  - name: orders\n    plugin: " RILLFLOW_ORDER_FOLDER_PLUGIN
         "\n    threshold: 10\n    interval_ms: 500\n    stream_prefix: 'orders:'\n";
}

std::vector<std::string> env_for(const TestSchema& db) {
  return {"RF_E2E_DB_URL=" + db.url()};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// p_c1's entry of /status (empty when the daemon does not answer).
std::optional<boost::json::object> projection(DaemonProcess& d) {
  const auto reply = http_get(d.port(), "/status");
  if (reply.status != 200) return std::nullopt;
  const auto status = parse_json(reply.body);
  for (const auto& p : status.at("projections").as_array()) {
    if (p.at("name").as_string() == "p_c1") return p.as_object();
  }
  return std::nullopt;
}

// The value of one series in a /metrics scrape (-1 when absent).
double metric(DaemonProcess& d, const std::string& series) {
  const auto body = http_get(d.port(), "/metrics").body;
  const auto at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

const std::string kGauge =
    R"(rillflow_consumer_blocked_seconds{consumer="p_c1",kind="projection"})";

// An append in a transaction the test holds open: it draws a global_seq and commits when told.
struct HeldAppend {
  explicit HeldAppend(const TestSchema& db, const std::string& application_name) : conn(db.raw()) {
    pqxx::nontransaction(conn).exec_params("select set_config('application_name', $1, false)",
                                           application_name);
    txn.emplace(conn);
    const std::string s = "\"" + db.name() + "\"";
    const auto stream = to_string(new_uuid());
    txn->exec_params("insert into " + s + ".streams (stream_id, version) values ($1::uuid, 1)",
                     stream);
    seq = txn->exec_params("insert into " + s +
                               ".events (stream_id, stream_seq, event_type, body) values "
                               "($1::uuid, 1, 'Counted', '1') returning global_seq",
                           stream)[0][0]
              .as<std::int64_t>();
    pid = txn->exec("select pg_backend_pid()")[0][0].as<int>();
    xid = txn->exec("select pg_current_xact_id()::text::bigint")[0][0].as<std::int64_t>();
  }
  pqxx::connection conn;
  std::optional<pqxx::work> txn;
  std::int64_t seq = 0;
  int pid = 0;
  std::int64_t xid = 0;
};

std::int64_t rows(const TestSchema& db) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn)
      .exec("select count(*) from \"" + db.name() + "\".c1")[0][0]
      .as<std::int64_t>();
}

// The text of the cell `field` in the row of projection `name` in a dumped DOM ("" if absent).
std::string cell_text(const std::string& dom, const std::string& name, const std::string& field) {
  const auto row = dom.find("data-kind=\"projection\" data-name=\"" + name + "\"");
  if (row == std::string::npos) return {};
  const auto end = dom.find("</tr>", row);
  const auto at = dom.find("data-field=\"" + field + "\"", row);
  if (at == std::string::npos || at > end) return {};
  const auto open = dom.find('>', at);
  const auto close = dom.find("</td>", open);
  return dom.substr(open + 1, close - open - 1);
}

std::string chromium() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

util::ProcessResult run_chromium(const std::string& binary, const std::string& profile,
                                 std::vector<std::string> args) {
  std::vector<std::string> argv{binary,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--no-first-run",
                                "--disable-extensions",
                                "--disable-dev-shm-usage",
                                "--user-data-dir=" + profile,
                                "--virtual-time-budget=10000"};
  argv.insert(argv.end(), args.begin(), args.end());
  return util::run_process(argv);
}

}  // namespace

TEST_CASE("status_names_the_open_transaction_a_projection_waits_on_and_the_gauge_counts") {
  TestSchema db;
  const auto config = write_temp("stall.yaml", config_yaml(db));
  DaemonProcess d(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(d.wait_ready());
  const auto first =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Counted", 1)});
  REQUIRE(eventually(
      [&] {
        const auto p = projection(d);
        return p && p->at("position").as_int64() == first.last_global_seq;
      },
      90s));
  auto p = *projection(d);
  CHECK_FALSE(p.at("stalled").as_bool());
  CHECK(p.at("blocked_by").is_null());
  CHECK(metric(d, kGauge) == 0);

  HeldAppend held(db, "held-appender");
  const auto later =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Counted", 2)});
  REQUIRE(later.last_global_seq > held.seq);
  // The later commit is delivered; the held one's event is what the projection waits for.
  REQUIRE(eventually(
      [&] {
        const auto s = projection(d);
        return s && s->at("stalled").as_bool() && s->at("blocked_by").is_object() &&
               s->at("blocked_by").at("pid").as_int64() == held.pid;
      },
      90s));
  p = *projection(d);
  CHECK(p.at("position").as_int64() == later.last_global_seq);
  const auto& by = p.at("blocked_by").as_object();
  CHECK(by.at("xid").as_int64() == held.xid);
  CHECK(by.at("application_name").as_string() == "held-appender");
  CHECK(by.at("state").as_string() == "idle in transaction");
  CHECK(by.at("age_seconds").as_double() >= 0);
  CHECK(contains(std::string(by.at("query").as_string()), "pg_current_xact_id"));
  CHECK(contains(std::string(by.at("message").as_string()),
                 "waiting for transaction " + std::to_string(held.xid) + " (pid " +
                     std::to_string(held.pid) + ", open "));
  CHECK(p.at("blocked_by_count").as_int64() == 1);
  CHECK(eventually([&] { return metric(d, kGauge) > 0; }, 90s));
  CHECK(projection(d)->at("blocked_seconds").as_double() > 0);

  held.txn->commit();
  CHECK(eventually(
      [&] {
        const auto s = projection(d);
        return s && !s->at("stalled").as_bool() && metric(d, kGauge) == 0 && rows(db) == 3;
      },
      90s));
  CHECK(rows(db) == 3);
  CHECK(projection(d)->at("blocked_by").is_null());
}

TEST_CASE("status_page_renders_the_status_values_in_a_real_browser") {
  const auto browser = chromium();
  if (browser.empty()) {
    MESSAGE("SKIPPED: chromium is not installed (scripts/setup installs Debian's chromium)");
    return;
  }
  TestSchema db;
  const auto config = write_temp("page.yaml", config_yaml(db));
  DaemonProcess d(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(d.wait_ready());
  for (int i = 0; i < 5; ++i) {
    db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Counted", i)});
  }
  // A held append whose application_name is markup: the page must show it as text.
  const std::string hostile = "<img src=x onerror=alert(1)>";
  HeldAppend held(db, hostile);
  const auto later =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Counted", 9)});
  REQUIRE(eventually(
      [&] {
        const auto p = projection(d);
        return p && p->at("position").as_int64() == later.last_global_seq &&
               p->at("stalled").as_bool();
      },
      90s));
  const auto expected = projection(d)->at("position").as_int64();

  const auto page = http_get(d.port(), "/");
  REQUIRE(page.status == 200);
  CHECK(contains(page.body, "id=\"projections\""));

  char profile_template[] = "/tmp/rillflow-chromium-XXXXXX";
  REQUIRE(mkdtemp(profile_template) != nullptr);
  const std::string profile = profile_template;
  const std::string url = "http://127.0.0.1:" + std::to_string(d.port()) + "/";
  const auto dump = run_chromium(browser, profile, {"--dump-dom", url});
  if (dump.exit_code != 0) {
    FAIL("chromium --dump-dom failed (exit " << dump.exit_code
                                             << "): " << dump.output.substr(0, 4000));
  }
  // stdout (the DOM) and stderr (chromium's own complaints, e.g. about D-Bus) interleaved.
  const auto& dom = dump.output;
  CHECK(contains(dom, "data-ready=\"true\""));
  CHECK(contains(dom, "data-name=\"p_c1\""));
  CHECK(cell_text(dom, "p_c1", "position") == std::to_string(expected));
  CHECK(cell_text(dom, "p_c1", "lag_events") == "0");
  CHECK(cell_text(dom, "p_c1", "dlq_depth") == "0");
  CHECK(contains(dom, "data-blocked-pid=\"" + std::to_string(held.pid) + "\""));
  CHECK(contains(dom, "waiting for transaction " + std::to_string(held.xid) + " (pid " +
                          std::to_string(held.pid) + ", open "));
  CHECK(contains(dom, "data-kind=\"snapshotter\" data-name=\"orders\""));
  // Rendered as text: escaped in the serialized DOM, and no <img> element exists.
  CHECK(contains(dom, "application &lt;img src=x onerror=alert(1)&gt;"));
  CHECK_FALSE(contains(dom, "<img"));
  const auto status = parse_json(http_get(d.port(), "/status").body);
  for (const auto& node : status.at("live_nodes").as_array()) {
    CHECK(contains(dom, std::string(node.as_string())));
  }

  const std::filesystem::path artifacts = RILLFLOW_TEST_ARTIFACTS_DIR;
  std::filesystem::create_directories(artifacts);
  const auto png = artifacts / "status_page.png";
  std::filesystem::remove(png);
  const auto shot = run_chromium(browser, profile,
                                 {"--window-size=1400,900", "--screenshot=" + png.string(), url});
  if (shot.exit_code != 0 || !std::filesystem::exists(png)) {
    FAIL("chromium --screenshot failed (exit " << shot.exit_code
                                               << "): " << shot.output.substr(0, 2000));
  }
  CHECK(std::filesystem::file_size(png) > 1000);
  std::ifstream in(png, std::ios::binary);
  char signature[8] = {};
  in.read(signature, 8);
  CHECK(std::string(signature + 1, 3) == "PNG");
  MESSAGE("status page screenshot: " << png.string());

  held.txn->commit();
  std::filesystem::remove_all(profile);
}
