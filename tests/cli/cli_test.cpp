// The rillflow CLI binary, run as a user would run it, against the test cluster.
#include "cli/cli_support.hpp"
#include "documents/query_sql.hpp"
#include "schema/migrations.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

util::ProcessResult cli(const TestSchema& db, std::vector<std::string> args) {
  return rillflow::testing::run_cli(db, std::move(args));
}
using rillflow::testing::contains;

}  // namespace

TEST_CASE("cli_usage_errors_exit_2_and_help_is_complete") {
  auto r = util::run_process({"env", "-u", "DATABASE_URL", RILLFLOW_CLI_PATH, "schema-plan"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "DATABASE_URL"));
  CHECK(util::run_process({RILLFLOW_CLI_PATH, "no-such-command"}).exit_code == 2);
  CHECK(util::run_process({RILLFLOW_CLI_PATH}).exit_code == 2);
  r = util::run_process({RILLFLOW_CLI_PATH, "--help"});
  CHECK(r.exit_code == 0);
  for (const char* cmd : {"schema-plan", "schema-sync", "health", "streams", "events", "docs",
                          "--database-url", "--schema"}) {
    CHECK(contains(r.output, cmd));
  }
  r = util::run_process({RILLFLOW_CLI_PATH, "events", "--help"});
  for (const char* cmd : {"append", "read", "tail"}) CHECK(contains(r.output, cmd));
  r = util::run_process({RILLFLOW_CLI_PATH, "docs", "--help"});
  for (const char* cmd : {"get", "soft-delete", "restore", "index-advisor"}) {
    CHECK(contains(r.output, cmd));
  }
  CHECK(util::run_process({RILLFLOW_CLI_PATH, "events", "append", "--help"}).exit_code == 0);
  CHECK(util::run_process({RILLFLOW_CLI_PATH, "--version"}).exit_code == 0);
}

TEST_CASE("cli_schema_plan_sync_and_health_report_truthfully") {
  TestSchema db(/*migrate=*/false);
  auto r = cli(db, {"health", "schema"});
  CHECK(r.exit_code == 1);
  r = cli(db, {"schema-plan"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "create table \"" + db.name() + "\".events"));
  r = cli(db, {"schema-sync"});
  CHECK(r.exit_code == 0);
  CHECK(contains(
      r.output, "applied " + std::to_string(rillflow::schema::migrations().size()) + " migration"));
  r = cli(db, {"schema-plan"});
  CHECK(r.exit_code == 0);
  CHECK(r.output.empty());
  r = cli(db, {"health", "schema"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "ok"));
  r = cli(db, {"--json", "schema-sync"});
  CHECK(contains(r.output, "\"applied\":[]"));

  auto conn = db.raw();
  pqxx::nontransaction(conn).exec("drop table \"" + db.name() + "\".stream_aliases");
  r = cli(db, {"health", "schema"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "stream_aliases"));
}

TEST_CASE("cli_appends_reads_resolves_and_tails_events") {
  TestSchema db;
  auto r = cli(db, {"streams", "resolve", "orders:42"});
  REQUIRE(r.exit_code == 0);
  const std::string id = r.output.substr(0, 36);
  CHECK(parse_uuid(id) == db.store().resolve_stream_alias("orders:42"));

  r = cli(db, {"events", "append", "orders:42", "OrderPlaced", R"({"total": 12})", "--expected",
               "no_stream", "--headers", R"({"req":"r1"})", "--idempotency-key", "k1"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "version 1"));
  r = cli(db, {"events", "append", id, "OrderPlaced", R"({"total": 12})", "--expected", "no_stream",
               "--headers", R"({"req":"r1"})", "--idempotency-key", "k1"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "replayed"));
  r = cli(db, {"events", "append", id, "OrderPaid", "{}", "--expected", "0"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "version_conflict"));
  r = cli(db, {"events", "append", id, "OrderPaid", "{not json"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "malformed JSON"));
  r = cli(db, {"events", "append", id, "OrderPaid", "{}", "--expected", "sometimes"});
  CHECK(r.exit_code == 2);
  CHECK(cli(db, {"events", "append", id, "OrderPaid", R"({"amount": 12})", "--expected", "1"})
            .exit_code == 0);

  r = cli(db, {"events", "read", "orders:42"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "@1 OrderPlaced {\"total\":12}"));
  CHECK(contains(r.output, "@2 OrderPaid"));
  r = cli(db, {"--json", "events", "read", id, "--from", "2"});
  const auto read = parse_json(r.output);
  REQUIRE(read.as_array().size() == 1);
  const auto& line = read.as_array()[0];
  CHECK(line.at("type").as_string() == "OrderPaid");
  CHECK(line.at("stream_seq").as_int64() == 2);

  r = cli(db, {"--json", "events", "tail", "--from-start"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).as_array().size() == 2);
  r = cli(db, {"events", "tail"});  // from the end: nothing new
  CHECK(r.exit_code == 0);
  CHECK(r.output.empty());
  r = cli(db, {"events", "tail", "--from-start", "--follow", "--max", "1"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "OrderPlaced"));
}

TEST_CASE("cli_reports_an_unreachable_database_without_the_password") {
  const auto r = util::run_process({RILLFLOW_CLI_PATH, "--database-url",
                                    "postgresql://app:pa55word@127.0.0.1:1/x?connect_timeout=2",
                                    "schema-plan"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "127.0.0.1:1"));
  CHECK_FALSE(contains(r.output, "pa55word"));
  const auto bad = util::run_process(
      {RILLFLOW_CLI_PATH, "--database-url", "x", "--schema", "Bad-Name", "schema-plan"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.output, "invalid schema name"));
}

namespace {
// A config file naming the example plugin, in a temp directory.
std::string write_config(const TestSchema& db, const std::string& extra = "") {
  const std::string path = "/tmp/rillflow-cli-" + db.name() + ".yaml";
  std::ofstream(path) << "schema: " << db.name() << "\n"
                      << "projections:\n"
                      << "  - name: totals\n"
                      << "    plugin: " << RILLFLOW_ORDER_TOTALS_PLUGIN << "\n"
                      << "    retry: {max_attempts: 1}\n"
                      << "    settings: {table: cli_totals}\n"
                      << extra;
  return path;
}
}  // namespace

TEST_CASE("cli_projections_run_the_configured_plugins_and_administer_them") {
  TestSchema db;
  const auto config = write_config(db);
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{RILLFLOW_CLI_PATH, "--database-url", db.url(), "--config",
                                  config};
    argv.insert(argv.end(), args.begin(), args.end());
    return util::run_process(argv);
  };
  auto events = db.store().events();
  for (int i = 0; i < 5; ++i) {
    events.append_stream(new_uuid(), Expected::any(),
                         {Event("OrderPlaced", boost::json::object{{"total", i}})});
  }
  events.append_stream(new_uuid(), Expected::any(),
                       {Event("OrderPlaced", boost::json::object{{"oops", 1}})});

  auto r = run({"projections", "run-until-idle"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "processed 6 event(s)"));
  auto conn = db.raw();
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".cli_totals")[0][0]
            .as<int>() == 5);

  r = run({"--json", "projections", "metrics", "totals"});
  CHECK(r.exit_code == 0);
  const auto m = parse_json(r.output);
  CHECK(m.at("lag_events").as_int64() == 0);
  CHECK(m.at("dlq_count").as_int64() == 1);

  r = run({"--json", "projections", "dlq-list", "totals"});
  const auto dlq = parse_json(r.output);
  REQUIRE(dlq.as_array().size() == 1);
  const auto id = dlq.as_array()[0].at("id").as_int64();
  CHECK(contains(r.output, "without a numeric"));
  CHECK(run({"projections", "dlq-requeue", "totals", "--id", std::to_string(id)}).exit_code == 0);
  CHECK(run({"projections", "dlq-requeue", "totals", "--id", "999999"}).exit_code == 1);
  r = run({"projections", "run-once", "--name", "totals"});
  CHECK(contains(r.output, "totals: processed"));
  CHECK(run({"projections", "dlq-list", "totals"}).output.find("#" + std::to_string(id)) !=
        std::string::npos);
  CHECK(run({"projections", "dlq-delete", "totals", "--id", std::to_string(id)}).exit_code == 0);

  CHECK(run({"projections", "pause", "totals"}).exit_code == 0);
  r = run({"--json", "projections", "status", "totals"});
  CHECK(parse_json(r.output).at("paused").as_bool());
  events.append_stream(new_uuid(), Expected::any(),
                       {Event("OrderPlaced", boost::json::object{{"total", 1}})});
  CHECK(contains(run({"projections", "run-once"}).output, "totals: paused"));
  CHECK(run({"projections", "resume", "totals"}).exit_code == 0);
  CHECK(contains(run({"projections", "run-until-idle", "--name", "totals"}).output,
                 "processed 1 event(s)"));

  r = run({"projections", "rebuild", "totals"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "processed 7 event(s)"));
  CHECK(run({"projections", "reset-checkpoint", "totals", "0"}).exit_code == 0);
  CHECK(contains(run({"projections", "list"}).output, "totals: at global_seq 0"));
  CHECK(run({"projections", "status", "nope"}).exit_code == 1);

  // Unknown names: exit 1 naming them, nothing written.
  for (const char* cmd : {"pause", "resume", "metrics", "dlq-list"}) {
    r = run({"projections", cmd, "typo"});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.output, "'typo'"));
  }
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".work_units where name = 'typo'")[0][0]
            .as<int>() == 0);
  // Something left undone (paused): run-until-idle says so and exits 1.
  CHECK(run({"projections", "pause", "totals"}).exit_code == 0);
  events.append_stream(new_uuid(), Expected::any(),
                       {Event("OrderPlaced", boost::json::object{{"total", 2}})});
  r = run({"projections", "run-until-idle"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "remaining"));
  std::remove(config.c_str());
}

TEST_CASE("cli_projections_rebuild_shadow_swaps_in_a_new_model_cancels_and_refuses_bad_input") {
  TestSchema db;
  const auto config = write_config(db);
  auto run = [&](std::vector<std::string> args, const std::string& cfg = "") {
    std::vector<std::string> argv{RILLFLOW_CLI_PATH, "--database-url", db.url(), "--config",
                                  cfg.empty() ? config : cfg};
    argv.insert(argv.end(), args.begin(), args.end());
    return util::run_process(argv);
  };
  auto events = db.store().events();
  for (int i = 0; i < 600; ++i) {
    events.append_stream(new_uuid(), Expected::any(),
                         {Event("OrderPlaced", boost::json::object{{"total", i}})});
  }
  REQUIRE(run({"projections", "run-until-idle"}).exit_code == 0);
  auto conn = db.raw();
  const auto table = "\"" + db.name() + "\".cli_totals";
  // Mark the live rows: the rebuilt model must not have the marks.
  pqxx::nontransaction(conn).exec("update " + table + " set last_event = 'live'");

  auto r = run({"projections", "rebuild", "totals", "--shadow"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "swapped it in (600 event(s) handled; relations: cli_totals)"));
  CHECK(contains(r.output, "totals (shadow): "));  // progress on stderr (batches of 500)
  CHECK(contains(r.output, "ETA"));
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from " + table + " where last_event = 'OrderPlaced'")[0][0]
            .as<int>() == 600);

  r = run({"--json", "projections", "rebuild", "totals", "--shadow"});
  CHECK(r.exit_code == 0);
  const auto report = parse_json(r.output.substr(r.output.rfind("{\"ok\"")));
  CHECK(report.at("processed").as_int64() == 600);
  CHECK(report.at("last_global_seq").as_int64() == events.head());

  // Nothing to cancel; bad combinations; unknown names; a plugin without shadow support.
  r = run({"projections", "rebuild", "totals", "--shadow", "--cancel"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "no shadow rebuild of 'totals' to cancel"));
  CHECK(run({"projections", "rebuild", "totals", "--cancel"}).exit_code == 2);
  CHECK(run({"projections", "rebuild", "totals", "--shadow", "--no-run"}).exit_code != 0);
  r = run({"projections", "rebuild", "typo", "--shadow"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "'typo'"));
  const std::string old_plugin = "/tmp/rillflow-cli-abi1-" + db.name() + ".yaml";
  std::ofstream(old_plugin) << "schema: " << db.name() << "\nprojections:\n  - name: old\n"
                            << "    plugin: " << RILLFLOW_ABI1_PLUGIN << "\n";
  r = run({"projections", "rebuild", "old", "--shadow"}, old_plugin);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "does not support shadow rebuilds"));
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".shadow_rebuilds")[0][0]
            .as<int>() == 0);
  std::remove(old_plugin.c_str());
  std::remove(config.c_str());
}

TEST_CASE("cli_reports_config_and_plugin_errors_clearly") {
  TestSchema db;
  const auto bad_key = write_config(db, "colour: blue\n");
  auto r = util::run_process({RILLFLOW_CLI_PATH, "--database-url", db.url(), "--config", bad_key,
                              "projections", "run-once"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "colour"));
  CHECK(contains(r.output, "unknown key"));
  const std::string missing = "/tmp/rillflow-cli-missing-" + db.name() + ".yaml";
  std::ofstream(missing) << "projections:\n  - name: x\n    plugin: /nonexistent/libx.so\n";
  r = util::run_process({RILLFLOW_CLI_PATH, "--database-url", db.url(), "--config", missing,
                         "projections", "run-once"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "/nonexistent/libx.so"));
  CHECK(contains(r.output, "[plugin]"));
  r = util::run_process({RILLFLOW_CLI_PATH, "config", "check", bad_key});
  CHECK(r.exit_code == 1);
  CHECK(util::run_process({RILLFLOW_CLI_PATH, "config", "check",
                           RILLFLOW_SOURCE_DIR "/config/rillflowd.example.yaml"})
            .exit_code == 0);
  std::remove(bad_key.c_str());
  std::remove(missing.c_str());
}

TEST_CASE("cli_docs_get_soft_delete_and_restore_a_document") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  docs.put("customers", id, parse_json(R"({"email":"a@x"})"));
  auto r = cli(db, {"docs", "get", to_string(id)});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output) == parse_json(R"({"email":"a@x"})"));
  r = cli(db, {"docs", "soft-delete", to_string(id)});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "soft-deleted customers/" + to_string(id) + " (version 2)"));
  CHECK_FALSE(docs.get("customers", id).has_value());
  r = cli(db, {"docs", "get", to_string(id)});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "doc_not_found"));
  r = cli(db, {"--json", "docs", "get", to_string(id), "--include-deleted"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).at("deleted") == true);
  r = cli(db, {"docs", "restore", to_string(id), "--collection", "customers"});
  CHECK(r.exit_code == 0);
  CHECK(docs.get("customers", id)->version == 3);

  // The same id in two collections: the CLI asks which one.
  docs.put("orders", id, parse_json(R"({"total":1})"));
  r = cli(db, {"docs", "get", to_string(id)});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "customers, orders"));
  r = cli(db, {"--json", "docs", "get", to_string(id), "-c", "orders"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).at("doc") == parse_json(R"({"total":1})"));
  CHECK(cli(db, {"docs", "get", to_string(new_uuid())}).exit_code == 1);
  CHECK(cli(db, {"docs", "get", "not-a-uuid"}).exit_code == 2);
}

TEST_CASE("cli_index_advisor_prints_ddl_that_runs_and_that_dsl_queries_use") {
  TestSchema db;
  std::vector<std::pair<Uuid, Json>> batch;
  for (int i = 0; i < 300; ++i) {
    batch.emplace_back(
        new_uuid(), boost::json::object{{"age", i % 90},
                                        {"email", "u" + std::to_string(i)},
                                        {"tags", boost::json::array{"t" + std::to_string(i % 7)}}});
  }
  db.store().docs().put_many("customers", batch);

  auto btree = cli(db, {"docs", "index-advisor", "--field", "age"});
  REQUIRE(btree.exit_code == 0);
  CHECK(contains(btree.output, "create index if not exists"));
  auto gin = cli(db, {"docs", "index-advisor", "--gin", "--field", "tags", "-c", "customers"});
  REQUIRE(gin.exit_code == 0);
  auto odd = cli(db, {"docs", "index-advisor", "--field", R"(we'ird"{,}\.x)", "-c", "o'k"});
  REQUIRE(odd.exit_code == 0);
  auto conn = db.raw();
  pqxx::nontransaction txn(conn);
  for (const auto* ddl : {&btree.output, &gin.output, &odd.output}) {
    txn.exec(*ddl);  // runs as printed
    txn.exec(*ddl);  // and again (if not exists)
  }
  txn.exec("analyze \"" + db.name() + "\".docs");
  txn.exec("set enable_seqscan = off");

  // The planner matches the DSL's own SQL (bound path and value) against the printed index.
  detail::StoreState state;
  state.quoted_schema = "\"" + db.name() + "\"";
  auto plan_of = [&](const DocumentQueryContext& q) {
    const auto compiled = docs::compile_select(state, q, docs_detail::Fetch::kAll);
    txn.exec("deallocate all");
    txn.exec("prepare q as " + compiled.sql);
    std::string args;
    for (const auto& p : compiled.params) args += (args.empty() ? "" : ", ") + txn.quote(p);
    std::string plan;
    for (const auto& row : txn.exec("explain execute q(" + args + ")")) {
      plan += row[0].as<std::string>() + "\n";
    }
    return plan;
  };
  const auto index_of = [](const std::string& ddl) {
    const auto start = ddl.find('"') + 1;
    return ddl.substr(start, ddl.find('"', start) - start);
  };
  DocumentQueryContext range("customers");
  range.filter(Predicate::gt("age", 80));
  CHECK(contains(plan_of(range), index_of(btree.output)));
  DocumentQueryContext tagged("customers");
  tagged.filter(Predicate::contains("tags", boost::json::array{"t3"}));
  CHECK(contains(plan_of(tagged), index_of(gin.output)));
  CHECK(cli(db, {"docs", "index-advisor", "--field", "a..b"}).exit_code == 1);
}

TEST_CASE("cli_subscriptions_create_tail_groups_and_refuse_unknown_names") {
  TestSchema db;
  for (int i = 0; i < 3; ++i) {
    db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Ping", i)});
  }
  auto r = cli(db, {"subscriptions", "create", "s1", "--event-type", "Ping", "--start-from", "0",
                    "--group", "workers-a", "--partitions", "2"});
  REQUIRE(r.exit_code == 0);
  r = cli(db, {"subscriptions", "tail", "s1", "--limit", "2", "--json"});
  REQUIRE(r.exit_code == 0);
  const auto tail = parse_json(r.output);  // exactly one JSON document
  CHECK(tail.at("acked").as_int64() == 2);
  CHECK(tail.at("events").as_array().size() == 2);
  r = cli(db, {"subscriptions", "tail", "s1", "--limit", "10"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "acked 1 event(s) of s1"));  // acked ones are not printed again
  r = cli(db, {"subscriptions", "tail", "s1", "--group", "workers-a", "--limit", "10"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "acked 3 event(s) of s1 (group workers-a)"));
  r = cli(db, {"subscriptions", "set-group-max-in-flight", "s1", "--group", "workers-a", "--value",
               "500", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).at("max_in_flight").as_int64() == 500);
  r = cli(db, {"subscriptions", "group-status", "s1", "--group", "workers-a", "--json"});
  REQUIRE(r.exit_code == 0);
  const auto status = parse_json(r.output);
  CHECK(status.at("max_in_flight").as_int64() == 500);
  CHECK(status.at("partitions").as_int64() == 2);
  CHECK(status.at("lag_events").as_int64() == 0);
  r = cli(db, {"subscriptions", "set-group-max-in-flight", "s1", "--group", "workers-a"});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "unset"));
  r = cli(db, {"subscriptions", "list", "--json"});
  CHECK(parse_json(r.output).as_array().size() == 1);
  r = cli(db, {"subscriptions", "groups", "s1", "--json"});
  CHECK(parse_json(r.output).at("groups").as_array().size() == 1);

  // Unknown names: exit 1 naming them, nothing written.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"subscriptions", "tail", "nope"},
        {"subscriptions", "get", "nope"},
        {"subscriptions", "pause", "nope"},
        {"subscriptions", "delete", "nope"},
        {"subscriptions", "reset", "nope", "0"},
        {"subscriptions", "groups", "nope"},
        {"subscriptions", "parked-list", "nope"},
        {"subscriptions", "group-status", "s1", "--group", "nope"},
        {"subscriptions", "tail", "s1", "--group", "nope"},
        {"subscriptions", "set-group-max-in-flight", "s1", "--group", "nope", "--value", "3"}}) {
    CAPTURE(args.back());
    r = cli(db, args);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.output, "nope"));
  }
  r = cli(db, {"subscriptions", "parked-requeue", "s1", "--id", "42"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "parked event 42"));
  r = cli(db, {"subscriptions", "create", "bad name"});
  CHECK(r.exit_code != 0);
  CHECK(contains(r.output, "bad name"));
  auto conn = db.raw();
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() +
                  "\".subscription_members where member "
                  "like '%nope%' or grp = 'nope'")[0][0]
            .as<int>() == 0);
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".subscriptions")[0][0]
            .as<int>() == 1);
  r = cli(db, {"subscriptions", "delete", "s1"});
  CHECK(r.exit_code == 0);
  r = cli(db, {"subscriptions", "list"});
  CHECK(contains(r.output, "no subscriptions yet"));
}
