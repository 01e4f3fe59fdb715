// Every CLI line of the feature list (tests/cli/seed_lines/*.txt), run as written against a
// fixture; tests/cli/seed_lines/README.md says how.
#include "support/daemon_process.hpp"
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Words of one command line, split like a shell: quotes group, '#' at a word's start comments
// out the rest.
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else if (c == '#' && !in_word) {
      break;
    } else if (c == '\'' || c == '"') {
      const auto end = line.find(c, i + 1);
      REQUIRE_MESSAGE(end != std::string::npos, "unterminated quote in: " << line);
      word += line.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

struct SeedLine {
  std::string file;
  std::string text;
};

std::vector<SeedLine> seed_lines() {
  const std::filesystem::path folder = RILLFLOW_SOURCE_DIR "/tests/cli/seed_lines";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<SeedLine> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line, pending;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\\') {
        pending += line.substr(0, line.size() - 1) + " ";
        continue;
      }
      line = pending + line;
      pending.clear();
      const auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line[first] == '#') continue;
      out.push_back({f.filename().string(), line.substr(first)});
    }
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// The cluster's URL pointing at another database.
std::string with_dbname(const std::string& url, const std::string& dbname) {
  const auto authority = url.find("://") + 3;
  const auto slash = url.find('/', authority);
  const auto query = url.find('?', authority);
  if (slash == std::string::npos || (query != std::string::npos && query < slash)) {
    const auto at = query == std::string::npos ? url.size() : query;
    return url.substr(0, at) + "/" + dbname + url.substr(at);
  }
  const auto end = query == std::string::npos ? url.size() : query;
  return url.substr(0, slash + 1) + dbname + url.substr(end);
}

// What each command must print when it did its job (by the words after "rillflow").
std::string expectation(const std::vector<std::string>& w, const std::string& doc_id) {
  const std::string cmd = w.size() > 1 ? w[1] : "";
  const std::string sub = w.size() > 2 ? w[2] : "";
  if (cmd == "schema-plan") return "";  // current: prints nothing
  if (cmd == "schema-sync") return "schema 'public' is current";
  if (cmd == "health") {
    if (std::find(w.begin(), w.end(), "--tenant") != w.end()) {
      return "tenant 'acme' (schema 'tenant_acme'): ok";
    }
    return "schema 'public': ok";
  }
  if (cmd == "tenants" && sub == "ensure" && w.size() > 3 && w[3] == "globex") {
    return "provisioned tenant 'globex' in schema 'tenant_globex'";
  }
  if (cmd == "tenants") {
    static const std::map<std::string, std::string> by_sub{
        {"ensure", "tenant 'acme' (schema 'tenant_acme') is current"},
        {"status", "tenant 'acme' (schema 'tenant_acme'): version"},
        {"list", "acme  schema tenant_acme"},
        {"archive", "archived tenant 'acme' (schema 'tenant_acme') to backups/acme/"},
        {"drop", "dropped tenant 'acme' (schema 'tenant_acme')"}};
    if (const auto it = by_sub.find(sub); it != by_sub.end()) return it->second;
  }
  if (cmd == "streams") return "-";  // a UUID
  if (cmd == "docs" && sub == "get") return "a@example.com";
  if (cmd == "docs" && sub == "soft-delete") return "soft-deleted customers/" + doc_id;
  if (cmd == "docs" && sub == "restore") return "restored customers/" + doc_id;
  if (cmd == "docs" && sub == "index-advisor") return "create index";
  if (cmd == "snapshots" && sub == "compact-once") return "orders: 1 candidate(s), 1 snapshot(s)";
  if (cmd == "snapshots" && sub == "run-until-idle") return "orders: 0 candidate(s)";
  if (cmd == "projections") {
    static const std::map<std::string, std::string> by_sub{
        {"list", "my_projection: at global_seq"},
        {"status", "my_projection: at global_seq"},
        {"pause", "paused my_projection"},
        {"resume", "resumed my_projection"},
        {"reset-checkpoint", "checkpoint of my_projection set after global_seq 0"},
        {"rebuild", "rebuilt my_projection"},
        {"run-once", "my_projection:"},
        {"run-until-idle", "processed"},
        {"dlq-list", "#123 "},
        {"dlq-requeue", "requeued DLQ entry 123 of my_projection"},
        {"dlq-delete", "deleted DLQ entry 123 of my_projection"},
        {"metrics", "my_projection: position"},
        {"run-loop", "serving HTTP on"}};
    if (const auto it = by_sub.find(sub); it != by_sub.end()) return it->second;
  }
  if (cmd == "subscriptions") {
    static const std::map<std::string, std::string> by_sub{
        {"create", "created subscription s1"},
        {"tail", "acked "},
        {"groups", "orders group workers-a: last_seq"},
        {"group-status", "orders group workers-a: last_seq"},
        {"set-group-max-in-flight", "max_in_flight of orders group workers-a"}};
    if (const auto it = by_sub.find(sub); it != by_sub.end()) return it->second;
  }
  FAIL("no expectation for the seed line's command: " << cmd << " " << sub
                                                      << " (add one with the feature)");
  return "";
}

}  // namespace

TEST_CASE("seed_readme_command_lines_run_as_written") {
  const auto lines = seed_lines();
  REQUIRE(lines.size() >= 20);

  // The fixture: a fresh database whose public schema is migrated.
  const std::string dbname = "rf_seed_" + testing::random_suffix();
  {
    pqxx::connection admin(testing::cluster_url());
    pqxx::nontransaction(admin).exec("create database " + dbname);
  }
  const std::string url = with_dbname(testing::cluster_url(), dbname);
  {
    auto store = Store::builder(url).schema("public").build();
    store.schema().sync();
    for (int i = 0; i < 3; ++i) {
      store.events().append_stream(new_uuid(), Expected::any(), {Event("Counted", i)});
    }
    // One stream past the snapshot lines' --threshold 200.
    std::vector<Event> order{Event("OrderPlaced", parse_json(R"({"total": 5})"))};
    for (int i = 1; i < 250; ++i) order.emplace_back("OrderPaid", parse_json(R"({"amount": 1})"));
    store.events().append_stream(store.resolve_stream_alias("orders:1"), Expected::any(), order);
    for (int i = 0; i < 2; ++i) {
      store.events().append_stream(new_uuid(), Expected::any(), {Event("Ping", i)});
    }
    SubscriptionOptions group;
    group.group = "workers-a";
    store.subscriptions().create("orders", {}, group);
  }
  // Tenant acme exists before the health lines (health.txt sorts before tenants.txt).
  Store::builder(url).build().ensure_tenant("acme");
  const auto doc_id = new_uuid();
  Store::builder(url).schema("public").build().docs().put(
      "customers", doc_id, parse_json(R"({"email":"a@example.com"})"));
  const std::string config = "/tmp/rillflow-seed-" + dbname + ".yaml";
  std::ofstream(config) << "schema: public\nprojections:\n  - name: my_projection\n    plugin: "
                        << RILLFLOW_COUNTING_PLUGIN
                        << "\n    settings: {table: my_projection_rows}\n"
                        << "snapshotters:\n  - name: orders\n    plugin: "
                        << RILLFLOW_ORDER_FOLDER_PLUGIN
                        // run-loop (projections.txt) runs this snapshotter too, as rillflowd
                        // does: a threshold it never reaches leaves the compaction to the
                        // snapshots lines, whose --threshold 200 overrides it.
                        << "\n    threshold: 10000000\n";
  // Lines run in a fresh directory of their own (`--output backups/acme` is relative).
  const auto workdir = std::filesystem::temp_directory_path() / ("rillflow-seed-" + dbname);
  std::filesystem::create_directories(workdir);
  auto run = [&](std::vector<std::string> words) {
    std::vector<std::string> argv{"env", "-C", workdir.string(), "RILLFLOW_CONFIG=" + config,
                                  "DATABASE_URL=" + url};
    argv.insert(argv.end(), words.begin(), words.end());
    return util::run_process(argv);
  };
  // The projection has a checkpoint row, as after a daemon's first tick.
  REQUIRE(run({RILLFLOW_CLI_PATH, "projections", "run-once"}).exit_code == 0);
  auto seed_dlq_entry = [&] {
    pqxx::connection conn(url);
    pqxx::nontransaction(conn).exec(
        "insert into public.parked (id, kind, name, global_seq, stream_id, stream_seq, "
        "event_type, body, headers, event_created_at, error, attempts) overriding system value "
        "select 123, 'projection', 'my_projection', global_seq, stream_id, stream_seq, event_type, "
        "body, "
        "headers, created_at, 'seeded failure', 3 from public.events order by global_seq "
        "limit 1 on conflict (id) do nothing");
  };

  for (const auto& line : lines) {
    const std::string text =
        replace_all(replace_all(line.text, "$DATABASE_URL", url), "<uuid>", to_string(doc_id));
    auto words = shell_words(text);
    CAPTURE(line.file);
    CAPTURE(line.text);
    REQUIRE(!words.empty());
    REQUIRE(words[0] == "rillflow");
    if (words.size() > 2 && words[1] == "projections" && words[2].starts_with("dlq-")) {
      seed_dlq_entry();
    }
    const auto expected = expectation(words, to_string(doc_id));
    words[0] = RILLFLOW_CLI_PATH;
    if (words.size() > 2 && words[2] == "run-loop") {
      // Long-running: on a free port, probed until ready, then SIGTERM; it must exit 0.
      int port = 0;
      for (std::size_t i = 1; i + 1 < words.size(); ++i) {
        if (words[i] != "--health-bind") continue;
        port = util::free_tcp_port();
        auto& bind = words[i + 1];
        bind = bind.substr(0, bind.rfind(':') + 1) + std::to_string(port);
      }
      REQUIRE(port > 0);
      std::vector<std::string> argv{"/usr/bin/env", "RILLFLOW_CONFIG=" + config,
                                    "DATABASE_URL=" + url};
      argv.insert(argv.end(), words.begin(), words.end());
      e2e::DaemonProcess loop(argv, {});
      CHECK(e2e::eventually([&] { return e2e::http_get(port, "/health/ready").status == 200; },
                            std::chrono::seconds(30)));
      CHECK(e2e::http_get(port, "/metrics").status == 200);
      loop.signal(SIGTERM);
      CHECK(loop.wait_exit(std::chrono::seconds(30)) == 0);
      CAPTURE(loop.log());
      CHECK(contains(loop.log(), expected));
      continue;
    }
    const auto r = run(words);
    CAPTURE(r.output);
    CHECK(r.exit_code != 2);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, expected));
  }

  // The lines changed what they say they change.
  {
    pqxx::connection conn(url);
    pqxx::nontransaction check(conn);
    CHECK(check.exec("select count(*) from public.stream_aliases where alias = 'orders:42'")[0][0]
              .as<int>() == 1);
    CHECK(check.exec("select count(*) from public.projection_dlq where id = 123")[0][0].as<int>() ==
          0);
    CHECK(check.exec("select count(*) from public.my_projection_rows")[0][0].as<int>() ==
          check.exec("select count(*) from public.events")[0][0].as<int>());
    // The snapshot lines stored the real folded state of orders:1 at its version.
    const auto snap = check.exec(
        "select n.version, n.body->>'events', s.snapshot_version from public.snapshots n join "
        "public.streams s using (stream_id) join public.stream_aliases a using (stream_id) "
        "where a.alias = 'orders:1'");
    REQUIRE(snap.size() == 1);
    CHECK(snap[0][0].as<int>() == 250);
    CHECK(snap[0][1].as<int>() == 250);
    CHECK(snap[0][2].as<int>() == 250);
    CHECK_FALSE(
        check.exec("select paused from public.projections where name = 'my_projection'")[0][0]
            .as<bool>());
  }
  // The tenant lines archived acme (a restorable dump) and then dropped it.
  CHECK(std::filesystem::file_size(workdir / "backups/acme/tenant_acme.dump") > 0);
  CHECK(std::filesystem::exists(workdir / "backups/acme/manifest.json"));
  {
    pqxx::connection conn(url);
    pqxx::nontransaction check(conn);
    CHECK(check.exec("select count(*) from pg_namespace where nspname = 'tenant_acme'")[0][0]
              .as<int>() == 0);
    // acme was archived and dropped; globex (the upgrade guide's line) stays.
    const auto tenants = check.exec("select name from public.tenants");
    REQUIRE(tenants.size() == 1);
    CHECK(tenants[0][0].as<std::string>() == "globex");
  }
  std::filesystem::remove_all(workdir);
  std::remove(config.c_str());
  pqxx::connection admin(testing::cluster_url());
  pqxx::nontransaction(admin).exec("drop database " + dbname + " with (force)");
}
