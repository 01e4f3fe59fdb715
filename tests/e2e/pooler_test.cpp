// rillflowd behind a transaction-pooling PgBouncer: ready, projecting, and woken by NOTIFY
// through a direct listen URL, or polling when it has none.
#include "support/daemon_process.hpp"
#include "support/pgbouncer.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <regex>

using namespace rillflow;
using namespace rillflow::e2e;
using rillflow::testing::PgBouncer;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

std::string pooled_config(const TestSchema& db, bool listen_url, int poll_ms) {
  return std::string("database: {url_env: RF_E2E_POOLED_URL, require_url: true") +
         (listen_url ? ", listen_url_env: RF_E2E_LISTEN_URL" : "") +
         "}\n"
         "schema: " +
         db.name() +
         "\n"
         "http: {bind: 127.0.0.1, port: 0}\n"
         "daemon: {lease_ttl_ms: " +
         std::to_string(std::max(2 * poll_ms, 4000)) +
         ", poll_interval_ms: " + std::to_string(poll_ms) +
         "}\n"
         "projections:\n"
         "  - name: p_pooled\n"
         "    plugin: " RILLFLOW_COUNTING_PLUGIN
         "\n"
         "    settings: {table: pooled}\n";
}

std::int64_t projected(const TestSchema& db) {
  try {
    auto conn = db.raw();
    return pqxx::nontransaction(conn)
        .exec("select count(*) from \"" + db.name() + "\".pooled")[0][0]
        .as<std::int64_t>();
  } catch (...) {
    return 0;
  }
}

double counter(int port, const std::string& series) {
  const auto body = http_get(port, "/metrics").body;
  std::smatch m;
  const std::regex re("\n" + std::regex_replace(series, std::regex(R"([{}])"), R"(\$&)") +
                      R"( ([0-9.e+]+))");
  return std::regex_search(body, m, re) ? std::stod(m[1]) : -1;
}

void append_through(const PgBouncer& bouncer, const TestSchema& db, int n) {
  auto store = Store::builder(bouncer.url()).schema(db.name()).max_connections(2).build();
  for (int i = 0; i < n; ++i)
    store.events().append_stream(new_uuid(), Expected::no_stream(), {Event("Counted", i)});
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("behind_pgbouncer_a_direct_listen_url_carries_notify_wakeups") {
  TestSchema db;
  auto bouncer = PgBouncer::start(testing::direct_url());
  // Polling every 10 minutes: within the test only a NOTIFY can wake the worker.
  const auto config = write_temp("pooled-listen.yaml", pooled_config(db, true, 600000));
  DaemonProcess d(
      RILLFLOWD_PATH, config,
      {"RF_E2E_POOLED_URL=" + bouncer.url(), "RF_E2E_LISTEN_URL=" + testing::direct_url()});
  REQUIRE(d.wait_ready());
  REQUIRE(eventually([&] { return contains(d.log(), "listening for NOTIFY"); }, 30s));
  CHECK(contains(d.log(), "prepared statements off"));
  CHECK_FALSE(contains(d.log(), "NOTIFY wakeups are off"));
  const auto series = R"(rillflow_wakeups_total{cause="notify"})";
  const double before = counter(d.port(), series);
  REQUIRE(before >= 0);
  append_through(bouncer, db, 5);
  CHECK(eventually([&] { return projected(db) == 5; }, 60s));
  CHECK(counter(d.port(), series) > before);
  CHECK(http_get(d.port(), "/health/ready").status == 200);
  d.signal(SIGTERM);
  CHECK(d.wait_exit(30s) == 0);
}

TEST_CASE("behind_pgbouncer_without_a_listen_url_rillflowd_warns_and_polls") {
  TestSchema db;
  auto bouncer = PgBouncer::start(testing::direct_url());
  const auto config = write_temp("pooled-poll.yaml", pooled_config(db, false, 200));
  DaemonProcess d(RILLFLOWD_PATH, config, {"RF_E2E_POOLED_URL=" + bouncer.url()});
  REQUIRE(d.wait_ready());
  CHECK(contains(d.log(), "NOTIFY wakeups are off"));
  CHECK(contains(d.log(), "listen_url_env"));
  append_through(bouncer, db, 7);
  CHECK(eventually([&] { return projected(db) == 7; }, 60s));
  CHECK(counter(d.port(), R"(rillflow_wakeups_total{cause="poll"})") > 0);
  CHECK_FALSE(contains(d.log(), "listening for NOTIFY"));
  const auto ready = http_get(d.port(), "/health/ready");
  CHECK(ready.status == 200);
  d.signal(SIGTERM);
  CHECK(d.wait_exit(30s) == 0);
}
