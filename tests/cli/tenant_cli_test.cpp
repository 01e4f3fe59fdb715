// `rillflow tenants ...` and `health schema --tenant / --all-tenants`, run as a user would, with
// the archive -> drop -> restore round trip of docs/tenants.md.
#include "embedded/pg_tools.hpp"
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

util::ProcessResult tenant_cli(const TestSchema& db, std::vector<std::string> args) {
  std::vector<std::string> argv{RILLFLOW_CLI_PATH, "--database-url", db.url(), "--schema",
                                db.name()};
  argv.insert(argv.end(), args.begin(), args.end());
  return util::run_process(argv);
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::int64_t count(const TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

// What a tenant holds, as comparable text: every event and document in order.
std::string contents(const TestSchema& db, const std::string& schema) {
  auto conn = db.raw();
  pqxx::nontransaction txn(conn);
  std::string out;
  for (const auto& r : txn.exec("select global_seq, stream_id, stream_seq, event_type, body::text "
                                "from \"" +
                                schema + "\".events order by global_seq")) {
    for (const auto& f : r) out += std::string(f.c_str()) + "|";
    out += "\n";
  }
  for (const auto& r : txn.exec("select collection, id, version, doc::text from \"" + schema +
                                "\".docs order by collection, id")) {
    for (const auto& f : r) out += std::string(f.c_str()) + "|";
    out += "\n";
  }
  return out;
}

struct DropAtEnd {
  const TestSchema& db;
  std::string schema;
  std::filesystem::path dir;
  ~DropAtEnd() {
    try {
      auto conn = db.raw();
      pqxx::nontransaction(conn).exec("drop schema if exists \"" + schema + "\" cascade");
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace

TEST_CASE("cli_tenants_ensure_status_list_archive_drop_and_restore_the_same_data") {
  TestSchema db;
  const std::string name = "acme_" + testing::random_suffix();
  const std::string schema = "tenant_" + name;
  const auto dir = std::filesystem::temp_directory_path() / ("rillflow-archive-" + name);
  DropAtEnd cleanup{db, schema, dir};

  auto r = tenant_cli(db, {"tenants", "ensure", name});
  CAPTURE(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(has(r.output, "provisioned tenant '" + name + "' in schema '" + schema + "'"));
  r = tenant_cli(db, {"tenants", "ensure", name});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, "is current"));

  // Data in the tenant, written through the library.
  auto tenant = db.store().tenant(name);
  const auto stream = new_uuid();
  tenant.events().append_stream(
      stream, Expected::no_stream(),
      {Event("Visited", 1), Event("Visited", boost::json::object{{"page", "/x"}}),
       Event("Left", 3)});
  tenant.docs().put("customers", new_uuid(), parse_json(R"({"email":"a@acme.test"})"));
  tenant.docs().put("customers", new_uuid(), parse_json(R"({"email":"b@acme.test"})"));
  const auto before = contents(db, schema);

  r = tenant_cli(db, {"tenants", "status", name});
  CAPTURE(r.output);
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, "version " + std::to_string(SchemaManager::latest_version()) + " of " +
                          std::to_string(SchemaManager::latest_version())));
  CHECK(has(r.output, "no drift"));
  CHECK(has(r.output, "events 3"));
  CHECK(has(r.output, "docs 2"));
  r = tenant_cli(db, {"--json", "tenants", "status", name});
  auto status = parse_json(r.output);
  CHECK(status.at("ok").as_bool());
  CHECK(status.at("rows").at("events").as_int64() == 3);
  CHECK(status.at("schema").as_string() == schema);

  r = tenant_cli(db, {"tenants", "list"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, name + "  schema " + schema));
  r = tenant_cli(db, {"--json", "tenants", "list"});
  REQUIRE(parse_json(r.output).as_array().size() == 1);
  CHECK(parse_json(r.output).as_array()[0].at("archived_at").is_null());

  r = tenant_cli(db, {"health", "schema", "--tenant", name});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, "tenant '" + name + "' (schema '" + schema + "'): ok"));
  r = tenant_cli(db, {"--json", "health", "schema", "--all-tenants"});
  CHECK(r.exit_code == 0);
  auto health = parse_json(r.output);
  CHECK(health.at("ok").as_bool());
  CHECK(health.at("tenants").as_array().size() == 1);

  // drop refuses without --force, and runs nothing.
  r = tenant_cli(db, {"tenants", "drop", name});
  CHECK(r.exit_code == 2);
  CHECK(has(r.output, "--force"));
  CHECK(count(db, "select count(*) from pg_namespace where nspname = '" + schema + "'") == 1);

  // archive -> drop -> restore (the commands of docs/tenants.md) -> the same data.
  r = tenant_cli(db, {"tenants", "archive", name, "--output", dir.string()});
  CAPTURE(r.output);
  REQUIRE(r.exit_code == 0);
  const auto dump = dir / (schema + ".dump");
  CHECK(std::filesystem::file_size(dump) > 0);
  std::ifstream manifest_file(dir / "manifest.json");
  const std::string manifest_text((std::istreambuf_iterator<char>(manifest_file)),
                                  std::istreambuf_iterator<char>());
  const auto manifest = parse_json(manifest_text);
  CHECK(manifest.at("rows").at("events").as_int64() == 3);
  CHECK(manifest.at("rows").at("docs").as_int64() == 2);
  CHECK(manifest.at("schema").as_string() == schema);
  r = tenant_cli(db, {"tenants", "archive", name, "--output", dir.string()});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "already holds an archive"));
  CHECK_FALSE(parse_json(tenant_cli(db, {"--json", "tenants", "list"}).output)
                  .as_array()[0]
                  .at("archived_at")
                  .is_null());

  r = tenant_cli(db, {"--json", "tenants", "drop", name, "--force"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).at("dropped").as_bool());
  CHECK(count(db, "select count(*) from pg_namespace where nspname = '" + schema + "'") == 0);
  r = tenant_cli(db, {"tenants", "status", name});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "TenantNotFound(\"" + schema + "\")"));

  const auto pg_restore = embedded::find_pg_tool("pg_restore");
  r = util::run_process({pg_restore.string(), "--dbname", testing::direct_url(), dump.string()});
  CAPTURE(r.output);
  REQUIRE(r.exit_code == 0);
  r = tenant_cli(db, {"--json", "tenants", "ensure", name});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).at("applied").as_array().empty());
  CHECK(contents(db, schema) == before);
  CHECK(db.builder().build().tenant(name).events().read_stream(stream).size() == 3);
  CHECK(tenant_cli(db, {"health", "schema", "--tenant", name}).exit_code == 0);
  // Appends continue where the restored stream left off.
  CHECK(db.builder()
            .build()
            .tenant(name)
            .events()
            .append_stream(stream, Expected::exact(3), {Event("Back", 4)})
            .last_version == 4);
}

TEST_CASE("cli_health_schema_exits_1_when_any_tenant_drifts") {
  TestSchema db;
  const std::string ok_name = "fine_" + testing::random_suffix();
  const std::string bad_name = "broken_" + testing::random_suffix();
  DropAtEnd c1{db, "tenant_" + ok_name, {}};
  DropAtEnd c2{db, "tenant_" + bad_name, {}};
  REQUIRE(tenant_cli(db, {"tenants", "ensure", ok_name}).exit_code == 0);
  REQUIRE(tenant_cli(db, {"tenants", "ensure", bad_name}).exit_code == 0);
  CHECK(tenant_cli(db, {"health", "schema", "--all-tenants"}).exit_code == 0);
  {
    auto conn = db.raw();
    pqxx::nontransaction(conn).exec("drop table \"tenant_" + bad_name + "\".stream_aliases");
  }
  auto r = tenant_cli(db, {"health", "schema", "--all-tenants"});
  CAPTURE(r.output);
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "tenant '" + ok_name + "' (schema 'tenant_" + ok_name + "'): ok"));
  CHECK(has(r.output, "tenant '" + bad_name + "' (schema 'tenant_" + bad_name + "'): drift"));
  CHECK(has(r.output, "stream_aliases"));
  r = tenant_cli(db, {"--json", "health", "schema", "--all-tenants"});
  CHECK(r.exit_code == 1);
  const auto j = parse_json(r.output);  // exactly one document
  CHECK_FALSE(j.at("ok").as_bool());
  CHECK(j.at("drifted_tenants").as_int64() == 1);
  CHECK(tenant_cli(db, {"health", "schema", "--tenant", bad_name}).exit_code == 1);
  CHECK(tenant_cli(db, {"health", "schema", "--tenant", ok_name}).exit_code == 0);
  r = tenant_cli(db, {"tenants", "status", bad_name});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "drift"));

  // Hostile and unknown names: usage error before connecting, or TenantNotFound.
  r = tenant_cli(db, {"tenants", "ensure", "Bad;Name"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.output, "invalid tenant name"));
  CHECK(tenant_cli(db, {"tenants", "ensure", "pg_catalog"}).exit_code == 2);
  CHECK(tenant_cli(db, {"health", "schema", "--tenant", "public"}).exit_code == 2);
  r = tenant_cli(db, {"health", "schema", "--tenant", "nobody_here"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "tenant_not_found"));
  CHECK(tenant_cli(db, {"tenants", "archive", ok_name}).exit_code == 2);  // --output missing
}

TEST_CASE("cli_projections_tenant_works_on_that_tenants_projections_only") {
  TestSchema db;
  const std::string tenant = "cli_" + rillflow::testing::random_suffix();
  DropAtEnd cleanup{db, "tenant_" + tenant, {}};
  db.store().ensure_tenant(tenant);
  const std::string config = "/tmp/rillflow-cli-tenant-" + db.name() + ".yaml";
  std::ofstream(config) << "schema: " << db.name() << "\nprojections:\n  - name: totals\n"
                        << "    plugin: " << RILLFLOW_ORDER_TOTALS_PLUGIN << "\n"
                        << "    settings: {table: cli_totals}\n";
  for (int i = 0; i < 3; ++i) {
    db.store().tenant(tenant).events().append_stream(
        new_uuid(), Expected::any(), {Event("OrderPlaced", boost::json::object{{"total", i}})});
  }
  auto r = tenant_cli(db, {"--config", config, "projections", "--tenant", tenant,
                           "run-until-idle"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, "processed 3 event(s)"));
  CHECK(count(db, "select count(*) from \"tenant_" + tenant + "\".cli_totals") == 3);
  CHECK(count(db, "select count(*) from \"" + db.name() + "\".work_units") == 0);  // base: none
  // The option after the subcommand works too; unknown and invalid tenants are refused.
  r = tenant_cli(db, {"projections", "status", "totals", "--tenant", tenant});
  CHECK(r.exit_code == 0);
  CHECK(has(r.output, "totals: at global_seq 3"));
  r = tenant_cli(db, {"projections", "--tenant", "nosuchtenant", "list"});
  CHECK(r.exit_code == 1);
  CHECK(has(r.output, "tenant_nosuchtenant"));
  r = tenant_cli(db, {"projections", "--tenant", "Bad-Name", "list"});
  CHECK(r.exit_code == 2);
  std::remove(config.c_str());
}
