// rillflow projections wait, trace [--mermaid | --json] and the blocked_by field of projections
// metrics, run as a user would run them.
#include "cli/cli_support.hpp"

#include <doctest/doctest.h>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

util::ProcessResult cli(const TestSchema& db, std::vector<std::string> args) {
  return rillflow::testing::run_cli(db, std::move(args));
}
using rillflow::testing::contains;

class Nothing : public ProjectionHandler {
 public:
  void apply(const EventEnvelope&, Transaction&) override {}
};

ProjectionDaemon daemon_for(TestSchema& db) {
  return ProjectionDaemon::builder(db.store())
      .register_projection("p", std::make_shared<Nothing>())
      .build();
}

}  // namespace

TEST_CASE("cli_projections_wait_exits_0_when_reached_1_on_timeout_2_on_usage") {
  TestSchema db;
  auto d = daemon_for(db);
  d.run_until_idle();
  const auto appended =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
  const auto pos = std::to_string(appended.last_global_seq);

  CHECK(cli(db, {"projections", "wait", "p", "--position", pos, "--timeout", "5x"}).exit_code == 2);
  CHECK(cli(db, {"projections", "wait", "p", "--timeout", "1s"}).exit_code == 2);
  CHECK(cli(db, {"projections", "wait", "p", "--position", "-3"}).exit_code == 2);
  auto r = cli(db, {"projections", "wait", "nope", "--position", pos, "--timeout", "0s"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "no projection named 'nope'"));

  r = cli(db, {"projections", "wait", "p", "--position", pos, "--timeout", "0ms"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "timeout: projection 'p' has not handled global_seq " + pos));
  CHECK(contains(r.output, "1 committed event(s) up to " + pos + " left"));
  r = cli(db, {"--json", "projections", "wait", "p", "--position", pos, "--timeout", "0s"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "\"reached\":false"));
  CHECK(contains(r.output, "\"behind\":1"));

  d.run_until_idle();
  r = cli(db, {"projections", "wait", "p", "--position", pos, "--timeout", "5s"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "p has handled global_seq " + pos));
  r = cli(db, {"--json", "projections", "wait", "p", "--position", pos});
  CHECK(r.exit_code == 0);
  const auto j = boost::json::parse(r.output).as_object();
  CHECK(j.at("reached").as_bool());
  CHECK(j.at("checks").as_int64() == 1);

  r = util::run_process({RILLFLOW_CLI_PATH, "projections", "wait", "--help"});
  CHECK(r.exit_code == 0);
  for (const char* word : {"--position", "--timeout", "5s"}) CHECK(contains(r.output, word));
  r = util::run_process({RILLFLOW_CLI_PATH, "--help"});
  CHECK(contains(r.output, "trace"));
}

TEST_CASE("cli_trace_prints_the_chain_as_text_json_and_golden_mermaid") {
  TestSchema db;
  auto events = db.store().events();
  const auto correlation = parse_uuid("00000000-0000-4000-8000-000000000002");
  const auto order = db.store().resolve_stream_alias("orders:7");
  const auto shipping = db.store().resolve_stream_alias("shipping:7 --> %% x");
  events.append_with(order, Expected::any(), {Event("OrderPlaced", 1)},
                     AppendOptions{{}, {}, correlation, {}});
  const auto placed = events.read_stream(order).back();
  events.append_with(shipping, Expected::any(), {Event("Shipment;Requested", 2)},
                     AppendOptions{{}, event_id(placed), correlation, {}});
  const auto id = to_string(correlation);

  auto r = cli(db, {"trace", id, "--mermaid"});
  CHECK(r.exit_code == 0);
  CHECK(r.output ==
        "sequenceDiagram\n"
        "  participant s1 as orders#58;7\n"
        "  participant s2 as shipping#58;7 --#62; #37;#37; x\n"
        "  s1->>s1: #35;1 OrderPlaced\n"
        "  s1->>s2: #35;2 Shipment#59;Requested (after #35;1)\n");
  r = cli(db, {"trace", id});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "#2 shipping:7 --> %% x@1 Shipment;Requested id "));
  CHECK(contains(r.output, "<- #1"));
  r = cli(db, {"--json", "trace", id});
  CHECK(r.exit_code == 0);
  const auto j = boost::json::parse(r.output).as_object();
  CHECK(j.at("events").as_array().size() == 2);
  CHECK(j.at("events").as_array()[1].as_object().at("caused_by").as_int64() == 1);

  r = cli(db, {"trace", to_string(new_uuid())});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "no events with correlation id"));
  CHECK(cli(db, {"trace", "not-a-uuid"}).exit_code == 2);
  CHECK(cli(db, {"--json", "trace", id, "--mermaid"}).exit_code == 2);
  r = util::run_process({RILLFLOW_CLI_PATH, "trace", "--help"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "--mermaid"));
}

TEST_CASE("cli_projections_metrics_shows_blocked_by_a_held_append") {
  TestSchema db;
  auto d = daemon_for(db);
  d.run_until_idle();
  auto r = cli(db, {"--json", "projections", "metrics", "p"});
  REQUIRE(r.exit_code == 0);
  CHECK(boost::json::parse(r.output).as_object().at("blocked_by").as_array().empty());

  auto conn = db.raw();
  pqxx::work held(conn);
  const std::string s = "\"" + db.name() + "\"";
  const auto stream = to_string(new_uuid());
  held.exec_params("insert into " + s + ".streams (stream_id, version) values ($1::uuid, 1)",
                   stream);
  held.exec_params("insert into " + s +
                       ".events (stream_id, stream_seq, event_type, body) values ($1::uuid, 1, "
                       "'Held', '{}')",
                   stream);
  const auto pid = held.exec("select pg_backend_pid()")[0][0].as<int>();
  db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Later", 1)});
  d.run_until_idle();

  r = cli(db, {"--json", "projections", "metrics", "p"});
  REQUIRE(r.exit_code == 0);
  const auto blocked = boost::json::parse(r.output).as_object().at("blocked_by").as_array();
  REQUIRE(blocked.size() == 1);
  CHECK(blocked[0].as_object().at("pid").as_int64() == pid);
  CHECK(contains(std::string(blocked[0].as_object().at("message").as_string()),
                 "waiting for transaction "));
  r = cli(db, {"projections", "metrics", "p"});
  CHECK(contains(r.output, "blocked: waiting for transaction "));
  CHECK(contains(r.output, "(pid " + std::to_string(pid) + ", open "));
  held.abort();
  r = cli(db, {"--json", "projections", "metrics", "p"});
  CHECK(boost::json::parse(r.output).as_object().at("blocked_by").as_array().empty());
}
