// `rillflow projections run-loop`: rillflowd's loop in the foreground, started as a user would.
#include "support/daemon_process.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <csignal>

using namespace rillflow;
using namespace rillflow::e2e;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

std::int64_t checkpoint(const TestSchema& db, const std::string& projection) {
  auto conn = db.raw();
  const auto r =
      pqxx::nontransaction(conn).exec_params("select coalesce(max(last_global_seq), 0) from \"" +
                                                 db.name() + "\".projections where name = $1",
                                             projection);
  return r[0][0].as<std::int64_t>();
}

}  // namespace

TEST_CASE("run_loop_serves_health_processes_appends_and_exits_0_on_sigterm") {
  TestSchema db;
  const auto config = write_temp(
      "run-loop.yaml", "projections:\n  - name: loop_p\n    plugin: " RILLFLOW_COUNTING_PLUGIN
                       "\n    settings: {table: loop_rows}\n");
  for (const char* notify : {"true", "false"}) {
    CAPTURE(notify);
    DaemonProcess loop(
        {RILLFLOW_CLI_PATH, "projections", "run-loop", "--use-notify", notify, "--health-bind",
         "127.0.0.1:0", "--database-url", db.url(), "--schema", db.name(), "--config", config},
        {});
    REQUIRE(loop.wait_ready(30s));
    CHECK(http_get(loop.port(), "/health").status == 200);
    CHECK(http_get(loop.port(), "/metrics").body.find("rillflow_ready 1") != std::string::npos);
    const auto before = checkpoint(db, "loop_p");
    const auto appended =
        db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Counted", 1)});
    CHECK(eventually([&] { return checkpoint(db, "loop_p") >= appended.last_global_seq; }, 30s));
    CHECK(checkpoint(db, "loop_p") > before);
    loop.signal(SIGTERM);
    CHECK(loop.wait_exit(30s) == 0);
    CHECK(loop.log().find("drained") != std::string::npos);
  }
}

TEST_CASE("run_loop_refuses_a_bad_bind_and_a_missing_registry_as_usage_errors") {
  TestSchema db;
  DaemonProcess no_registry({RILLFLOW_CLI_PATH, "projections", "run-loop", "--database-url",
                             db.url(), "--health-bind", "127.0.0.1:0"},
                            {});
  CHECK(no_registry.wait_exit(30s) == 2);
  DaemonProcess bad_bind({RILLFLOW_CLI_PATH, "projections", "run-loop", "--database-url", db.url(),
                          "--health-bind", "127.0.0.1:99999"},
                         {});
  CHECK(bad_bind.wait_exit(30s) == 2);
}
