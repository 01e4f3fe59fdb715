// The CLI on the input a new user gives it: options anywhere, typos, secrets in URLs, bad JSON,
// names that do not exist, configs with their own schema, drifted schemas.
#include "db/url_encode.hpp"
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <doctest/doctest.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace rillflow;
using rillflow::db::percent_encode;
using rillflow::testing::TestSchema;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

util::ProcessResult rf(std::vector<std::string> args) {
  args.insert(args.begin(), RILLFLOW_CLI_PATH);
  args.insert(args.begin(), {"env", "-u", "DATABASE_URL", "-u", "RILLFLOW_CONFIG"});
  return util::run_process(args);
}

// stdout alone (stderr dropped).
util::ProcessResult rf_stdout(std::vector<std::string> args) {
  std::vector<std::string> argv{"sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null", RILLFLOW_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return util::run_process(argv);
}

std::int64_t count(const TestSchema& db, const std::string& sql_after_from) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn)
      .exec("select count(*) from \"" + db.name() + "\"." + sql_after_from)[0][0]
      .as<std::int64_t>();
}

std::string counting_config(const std::string& schema, const std::string& name) {
  const std::string path = "/tmp/rillflow-cli-input-" + name + ".yaml";
  std::ofstream(path) << "schema: " << schema << "\nprojections:\n  - name: " << name
                      << "\n    plugin: " << RILLFLOW_COUNTING_PLUGIN
                      << "\n    settings: {table: " << name << "_rows}\n";
  return path;
}

}  // namespace

TEST_CASE("global_options_go_before_or_after_the_command_and_usage_errors_say_what_is_wrong") {
  TestSchema db;
  auto r = rf({"schema-sync", "--database-url", db.url(), "--schema", db.name()});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "schema '" + db.name() + "' is current"));
  r = rf({"events", "append", "orders:1", "Placed", "{}", "--json", "--schema", db.name(),
          "--database-url", db.url()});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).at("version").as_int64() == 1);

  r = rf({"frobnicate"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "unknown command 'frobnicate'"));
  r = rf({"projections", "frob", "--database-url", db.url()});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "unknown command 'frob' for 'projections'"));

  // A usage error never prints the URL back.
  r = rf({"schema-sync", "stray", "--database-url", "postgresql://app:Sekr3tPw@db.example/x"});
  CHECK(r.exit_code == 2);
  CHECK_FALSE(contains(r.output, "Sekr3tPw"));
  r = rf({"schema-sync", "postgresql://app:Sekr3tPw@db.example/x"});
  CHECK(r.exit_code == 2);
  CHECK_FALSE(contains(r.output, "Sekr3tPw"));

  // Negative counts are usage errors found before any query (the URL leads nowhere), readable.
  const std::string nowhere = "postgresql://app@127.0.0.1:1/x?connect_timeout=1";
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"projections", "reset-checkpoint", "p", "-5"},
                                             {"events", "read", "orders:1", "--limit", "-1"},
                                             {"events", "tail", "--max", "-3"},
                                             {"projections", "dlq-list", "p", "--limit", "-1"},
                                             {"projections", "dlq-delete", "p", "--id", "-1"}}) {
    auto argv = args;
    argv.insert(argv.end(), {"--database-url", nowhere});
    r = rf(argv);
    CAPTURE(args);
    CAPTURE(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "must be 0 or more"));
    CHECK_FALSE(contains(r.output, "179769"));
    CHECK(r.output.size() < 200);
  }
  CHECK(contains(rf({"--help"}).output, "Exit codes:"));
}

TEST_CASE("redact_secrets_strips_url_userinfo_and_conninfo_passwords") {
  CHECK(redact_secrets("postgresql://app:s3cr@t/x@db:5432/app") == "postgresql://***@db:5432/app");
  CHECK(redact_secrets("at postgres://u:p w@h/db then") == "at postgres://***@h/db then");
  CHECK(redact_secrets("postgresql://db:5432/app") == "postgresql://db:5432/app");
  CHECK(redact_secrets("host=h password='a b\\' c' user=u") == "host=h password=*** user=u");
  CHECK(redact_secrets("host=h PASSWORD = plain user=u") == "host=h PASSWORD = *** user=u");
  CHECK(redact_secrets("x?password=abc&user=u") == "x?password=***");
}

TEST_CASE("passwords_with_reserved_characters_never_appear_in_cli_output") {
  TestSchema db;
  const std::string base = testing::cluster_url();
  const std::string prefix = "postgresql://postgres@";
  for (const std::string password : {"p@ss/w:rd?#%' x", "a b@c/d:e", "x%zz/y@z"}) {
    CAPTURE(password);
    const auto leaks = [&](const std::string& out) {
      if (contains(out, password) || contains(out, percent_encode(password))) return true;
      // Fragments an unencoded '@' or '/' would make libpq quote as host, port or database.
      std::string piece;
      for (const char c : password + "@") {
        if (c == '@' || c == '/') {
          if (piece.size() >= 3 && contains(out, piece)) return true;
          piece.clear();
        } else {
          piece += c;
        }
      }
      return false;
    };
    if (base.starts_with(prefix)) {
      // Encoded: works (trust authentication ignores the password) and prints nothing of it.
      const std::string url =
          "postgresql://postgres:" + percent_encode(password) + "@" + base.substr(prefix.size());
      auto r = rf({"health", "schema", "--database-url", url, "--schema", db.name()});
      CHECK(r.exit_code == 0);
      CHECK_FALSE(leaks(r.output));
      // Unencoded: refused before libpq can misread it, quoting nothing.
      r = rf({"health", "schema", "--database-url",
              "postgresql://postgres:" + password + "@" + base.substr(prefix.size()), "--schema",
              db.name()});
      CHECK(r.exit_code == 2);
      CHECK(contains(r.output, "percent-encode"));
      CHECK_FALSE(leaks(r.output));
    }
    auto r = rf({"schema-plan", "--database-url",
                 "postgresql://app:" + password + "@127.0.0.1:1/x?connect_timeout=2"});
    CHECK(r.exit_code != 0);
    CHECK_FALSE(leaks(r.output));
    r = rf({"schema-plan", "--database-url",
            "postgresql://app:" + percent_encode(password) + "@127.0.0.1:1/x?connect_timeout=2"});
    CHECK(r.exit_code == 1);
    CHECK_FALSE(leaks(r.output));
    std::string quoted;
    for (const char c : password) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    r = rf({"schema-plan", "--database-url",
            "host=127.0.0.1 port=1 connect_timeout=2 user=app password='" + quoted + "'"});
    CHECK(r.exit_code == 1);
    CHECK_FALSE(leaks(r.output));
  }
}

TEST_CASE("reads_and_refused_appends_create_no_stream_alias") {
  TestSchema db;
  const auto aliases = [&] { return count(db, "stream_aliases"); };
  auto r = rf({"events", "read", "orders:nope", "--database-url", db.url(), "--schema", db.name()});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "no stream alias 'orders:nope'"));
  for (const auto& bad :
       std::vector<std::vector<std::string>>{{"orders:7", "Placed", "{}", "--headers", "{oops"},
                                             {"orders:7", "Placed", "{}", "--headers", "[1]"},
                                             {"orders:7", "", "{}"},
                                             {"orders:7", "Placed", "{\"a\":"}}) {
    std::vector<std::string> argv{"events", "append"};
    argv.insert(argv.end(), bad.begin(), bad.end());
    argv.insert(argv.end(), {"--database-url", db.url(), "--schema", db.name()});
    r = rf(argv);
    CAPTURE(bad);
    CHECK(r.exit_code == 2);
  }
  r = rf({"events", "read", "0123456789ab-cdef-0123-4567-89abcdef012", "--database-url", db.url(),
          "--schema", db.name()});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "not a UUID"));
  r = rf({"events", "append", "0123456789abcdef0123456789abcdef012", "T", "{}", "--database-url",
          db.url(), "--schema", db.name()});
  CHECK(r.exit_code == 2);
  CHECK(aliases() == 0);
  CHECK(count(db, "events") == 0);
}

TEST_CASE("json_input_errors_name_line_and_column_and_numbers_stay_exact") {
  TestSchema db;
  const auto append = [&](const std::string& body) {
    return rf({"events", "append", "orders:j", "T", body, "--database-url", db.url(), "--schema",
               db.name()});
  };
  auto r = append("{\n  \"a\": 1,\n  \"b\": ]\n}");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "line 3, column 8"));
  for (const std::string bad : {R"({"a": 123456789012345678901234567890})", R"({"a": 1e999})",
                                R"({"a": 3.14159265358979323846264})", R"({"a": "x\u0000y"})",
                                R"({"a": Infinity})", R"({"a": NaN})", "{\"a\": \"\xff\xfe\"}"}) {
    CAPTURE(bad);
    r = append(bad);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "malformed JSON at line 1, column"));
    CHECK_FALSE(contains(r.output, "22P0"));
    CHECK_FALSE(contains(r.output, "22021"));
  }
  CHECK(count(db, "events") == 0);
  r = append(R"({"big": 9223372036854775807, "u": 18446744073709551615, "d": 0.1})");
  CHECK(r.exit_code == 0);
  r = rf(
      {"--json", "events", "read", "orders:j", "--database-url", db.url(), "--schema", db.name()});
  const auto body = parse_json(r.output).as_array().at(0).at("body");
  CHECK(body.at("big").as_int64() == 9223372036854775807LL);
  CHECK(body.at("u").as_uint64() == 18446744073709551615ULL);
  CHECK(body.at("d").as_double() == 0.1);
}

TEST_CASE("json_output_is_one_document_and_the_config_schema_is_named_everywhere") {
  TestSchema db;
  const auto config = counting_config(db.name(), "jsonone");
  db.store().events().append_stream(new_uuid(), Expected::any(), {Event("T", 1)});
  // No --schema: the config's schema is the one used and named.
  auto r = rf_stdout({"--config", config, "--database-url", db.url(), "--json", "projections",
                      "rebuild", "jsonone"});
  CHECK(r.exit_code == 0);
  CHECK(parse_json(r.output).is_object());  // exactly one document (parse fails on two)
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--json", "schema-sync"},
                                             {"--json", "health", "schema"},
                                             {"--json", "schema-plan"},
                                             {"--json", "events", "tail", "--from-start"},
                                             {"--json", "projections", "list"}}) {
    auto argv = args;
    argv.insert(argv.end(), {"--config", config, "--database-url", db.url()});
    r = rf_stdout(argv);
    CAPTURE(args);
    CHECK(r.exit_code == 0);
    const auto doc = parse_json(r.output);
    if (doc.is_object() && doc.as_object().contains("schema")) {
      CHECK(doc.at("schema").as_string() == db.name());
    }
  }
  r = rf({"health", "schema", "--config", config, "--database-url", db.url()});
  CHECK(contains(r.output, "schema '" + db.name() + "': ok"));
  CHECK_FALSE(contains(r.output, "public"));
  r = rf({"docs", "index-advisor", "--field", "email", "--config", config});
  CHECK(contains(r.output, "\"" + db.name() + "\""));
  std::remove(config.c_str());
}

TEST_CASE("config_check_loads_plugins_like_rillflowd_and_plugin_paths_follow_the_config_file") {
  const auto folder =
      std::filesystem::temp_directory_path() / ("rillflow-relative-" + testing::random_suffix());
  std::filesystem::create_directories(folder / "plugins");
  std::filesystem::copy_file(RILLFLOW_COUNTING_PLUGIN, folder / "plugins" / "libcounting.so");
  const auto good = (folder / "good.yaml").string();
  std::ofstream(good) << "projections:\n  - name: rel\n    plugin: plugins/libcounting.so\n"
                         "    settings: {table: rel_rows}\n";
  const auto missing = (folder / "missing.yaml").string();
  std::ofstream(missing) << "projections:\n  - name: gone\n    plugin: plugins/libgone.so\n";
  // Run from another folder: the relative path is the config file's, not the working dir's.
  for (const auto& file : {good, missing}) {
    const bool ok = file == good;
    const auto cli = util::run_process(
        {"sh", "-c", "cd / && exec \"$0\" config check \"$1\"", RILLFLOW_CLI_PATH, file});
    const auto daemon = util::run_process(
        {"sh", "-c", "cd / && exec \"$0\" --check-config --config \"$1\"", RILLFLOWD_PATH, file});
    CAPTURE(cli.output);
    CAPTURE(daemon.output);
    CHECK(cli.exit_code == (ok ? 0 : 1));
    CHECK(daemon.exit_code == cli.exit_code);
    if (ok) {
      CHECK(contains(cli.output, "rel = counting 1.0.0"));
    } else {
      CHECK(contains(cli.output, (folder / "plugins" / "libgone.so").string()));
    }
  }
  // The example config agrees between the two as well.
  const std::string example = RILLFLOW_SOURCE_DIR "/config/rillflowd.example.yaml";
  CHECK(util::run_process({RILLFLOW_CLI_PATH, "config", "check", example}).exit_code ==
        util::run_process({RILLFLOWD_PATH, "--check-config", "--config", example}).exit_code);
  std::filesystem::remove_all(folder);
}

TEST_CASE("health_schema_sees_dropped_and_retyped_columns_and_schema_sync_does_not_say_current") {
  TestSchema db;
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--database-url", db.url(), "--schema", db.name()});
    return rf(args);
  };
  CHECK(run({"health", "schema"}).exit_code == 0);
  {
    auto conn = db.raw();
    pqxx::nontransaction(conn).exec("alter table \"" + db.name() +
                                    "\".ticks drop column created_at; alter table \"" + db.name() +
                                    "\".streams alter column version type integer");
  }
  auto r = run({"health", "schema"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "missing column " + db.name() + ".ticks.created_at"));
  CHECK(contains(r.output, db.name() + ".streams.version is integer"));
  r = run({"schema-sync"});
  CHECK(r.exit_code == 1);
  CHECK_FALSE(contains(r.output, "is current"));
  CHECK(contains(r.output, "ticks.created_at"));
}
