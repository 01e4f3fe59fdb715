// The YAML config: typed parsing, errors naming key paths, defaults, the reference table.
#include "config/config.hpp"

#include <rillflow/error.hpp>
#include <rillflow/store.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace rillflow;

namespace {

std::string config_error(const std::string& yaml) {
  try {
    config::parse(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("config_defaults_apply_to_an_empty_file") {
  const auto c = config::parse("", "empty.yaml");
  CHECK(c.schema == "public");
  CHECK(c.http.port == 8080);
  CHECK(c.daemon.drain_deadline_ms == 30000);
  CHECK(c.database.url_env == "DATABASE_URL");
  CHECK(c.projections.empty());
}

TEST_CASE("config_defaults_of_core_options_are_the_library_defaults") {
  // A projection or snapshotter named with nothing else runs exactly as the library's defaults
  // would: the key table takes these defaults from core, it does not restate them.
  const auto c = config::parse(
      "projections: [{name: p, plugin: p.so}]\nsnapshotters: [{name: s, plugin: s.so}]\n",
      "defaults.yaml");
  const ProjectionOptions library{};
  const auto daemon = c.projections.at(0).options();
  CHECK(daemon.batch_size == library.batch_size);
  CHECK(daemon.max_attempts == library.max_attempts);
  CHECK(daemon.retry_base_delay == library.retry_base_delay);
  CHECK(daemon.retry_max_delay == library.retry_max_delay);
  const SnapshotterConfig snapshots{};
  const auto snap = c.snapshotters.at(0).options(std::chrono::milliseconds(30000));
  CHECK(snap.threshold_events == snapshots.threshold_events);
  CHECK(snap.batch_size == snapshots.batch_size);
  CHECK(static_cast<std::size_t>(c.database.max_connections) == StoreOptions{}.max_connections);
}

TEST_CASE("config_example_file_parses_into_typed_settings_and_shows_every_key") {
  const std::string path = RILLFLOW_SOURCE_DIR "/config/rillflowd.example.yaml";
  const auto c = config::load(path);
  REQUIRE(c.projections.size() == 1);
  const auto& p = c.projections[0];
  CHECK(p.name == "order_totals");
  CHECK(p.event_types.size() == 3);
  CHECK(p.settings.at("table").as_string() == "order_totals");
  const auto o = p.options();
  CHECK(o.batch_size == 500);
  CHECK(o.max_attempts == 5);
  CHECK(o.on_failure == FailurePolicy::kDeadLetter);
  const auto text = read_file(path);
  for (const auto& key : config::key_paths()) {
    const auto leaf = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
    CAPTURE(key);
    CHECK(contains(text, leaf + ":"));
  }
}

TEST_CASE("config_reference_in_the_docs_is_the_generated_table") {
  const auto readme = read_file(RILLFLOW_SOURCE_DIR "/config/README.md");
  CHECK(contains(readme, "<!-- reference:begin -->\n" + config::reference_markdown() +
                             "<!-- reference:end -->"));
}

TEST_CASE("config_rejects_unknown_keys_naming_the_path") {
  auto msg = config_error("daemon:\n  lease_tll_ms: 5\n");
  CHECK(contains(msg, "daemon.lease_tll_ms"));
  CHECK(contains(msg, "unknown key"));
  CHECK(contains(msg, "lease_ttl_ms"));  // the known keys are listed
  msg = config_error(
      "projections:\n  - name: a\n    plugin: /x.so\n    retry:\n      max_atempts: 3\n");
  CHECK(contains(msg, "projections[0].retry.max_atempts"));
  CHECK(contains(config_error("colour: blue\n"), "colour"));
}

TEST_CASE("config_rejects_wrong_types_and_bad_values_naming_path_line_and_value") {
  auto msg = config_error("http:\n  port: eighty\n");
  CHECK(contains(msg, "http.port"));
  CHECK(contains(msg, "line 2"));
  CHECK(contains(msg, "'eighty'"));
  CHECK(contains(config_error("http:\n  port: 70000\n"), "between 0 and 65535"));
  CHECK(contains(config_error("daemon:\n  notify: maybe\n"), "daemon.notify"));
  CHECK(contains(config_error("logging:\n  level: loud\n"), "must be one of"));
  CHECK(contains(config_error("schema: \"Bad Schema\"\n"), "schema"));
  CHECK(contains(
      config_error("projections:\n  - name: a\n    plugin: /x.so\n    on_failure: explode\n"),
      "projections[0].on_failure"));
  CHECK(contains(
      config_error(
          "projections:\n  - name: a\n    plugin: /x.so\n  - name: a\n    plugin: /y.so\n"),
      "duplicate projection name 'a'"));
  CHECK(contains(config_error("projections:\n  - plugin: /x.so\n"), "needs a name"));
  CHECK(contains(config_error("projections:\n  - name: a\n"), "needs a plugin"));
  CHECK(contains(config_error("projections: {a: 1}\n"), "expected a list"));
  CHECK(contains(config_error("http: [1, 2]\n"), "expected a map"));
  CHECK(contains(config_error("daemon: {notify: [\n"), "not valid YAML"));
}

TEST_CASE("config_settings_become_json_with_types") {
  const auto c = config::parse(
      "projections:\n  - name: a\n    plugin: /x.so\n    settings:\n      n: 3\n      f: 1.5\n     "
      " b: true\n"
      "      s: hello\n      q: \"42\"\n      l: [1, two]\n      m: {k: v}\n");
  const auto& s = c.projections[0].settings;
  CHECK(s.at("n").as_int64() == 3);
  CHECK(s.at("f").as_double() == 1.5);
  CHECK(s.at("b").as_bool());
  CHECK(s.at("s").as_string() == "hello");
  CHECK(s.at("q").as_string() == "42");
  CHECK(s.at("l").as_array().size() == 2);
  CHECK(s.at("m").at("k").as_string() == "v");
}

TEST_CASE("database_url_comes_from_the_environment_or_a_file_else_embedded") {
  config::DatabaseConfig db;
  db.url_env = "RILLFLOW_TEST_UNSET_VARIABLE";
  CHECK_FALSE(config::resolve_database_url(db).has_value());
  setenv("RILLFLOW_TEST_URL_VARIABLE", "postgresql://u@h/db", 1);
  db.url_env = "RILLFLOW_TEST_URL_VARIABLE";
  CHECK(config::resolve_database_url(db) == "postgresql://u@h/db");
  db.url_env = "RILLFLOW_TEST_UNSET_VARIABLE";
  const std::string file = "/tmp/rillflow-url-test-" + std::to_string(getpid());
  std::ofstream(file) << "postgresql://from@file/db\n";
  db.url_file = file;
  CHECK(config::resolve_database_url(db) == "postgresql://from@file/db");
  db.url_file = "/nonexistent/url";
  CHECK_THROWS_AS(config::resolve_database_url(db), ConfigError);
  db.url_file.clear();
  db.require_url = true;
  CHECK_THROWS_AS(config::resolve_database_url(db), ConfigError);
  std::remove(file.c_str());
}

TEST_CASE("config_rejects_a_lease_ttl_too_short_for_renewals") {
  CHECK(contains(config_error("daemon: {lease_ttl_ms: 1500}\n"), "daemon.lease_ttl_ms"));
  CHECK(contains(config_error("daemon: {lease_ttl_ms: 10000, poll_interval_ms: 6000}\n"),
                 "at least twice"));
  CHECK(
      config::parse("daemon: {lease_ttl_ms: 2000, poll_interval_ms: 200}\n").daemon.lease_ttl_ms ==
      2000);
}

TEST_CASE("config_reads_prepared_statements_and_the_listen_url") {
  CHECK(config::parse("").database.prepared_statements == "auto");
  CHECK(config::parse("database: {prepared_statements: off}\n").database.prepared_statements ==
        "off");
  const auto msg = config_error("database:\n  prepared_statements: sometimes\n");
  CHECK(contains(msg, "database.prepared_statements"));
  CHECK(contains(msg, "auto, on, off"));
  CHECK_FALSE(config::resolve_listen_url(config::DatabaseConfig{}).has_value());
  config::DatabaseConfig db;
  db.listen_url_env = "RF_TEST_LISTEN_URL_UNSET";
  ::unsetenv("RF_TEST_LISTEN_URL_UNSET");
  CHECK_THROWS_AS(config::resolve_listen_url(db), ConfigError);
  ::setenv("RF_TEST_LISTEN_URL_UNSET", "postgresql://direct/db", 1);
  CHECK(config::resolve_listen_url(db).value() == "postgresql://direct/db");
  ::unsetenv("RF_TEST_LISTEN_URL_UNSET");
}

TEST_CASE("config_snapshotters_parse_with_defaults_and_reject_bad_entries") {
  const auto c = config::parse(
      "snapshotters:\n  - name: orders\n    plugin: /x/f.so\n    threshold: 50\n"
      "    stream_prefix: 'orders:'\n  - name: carts\n    plugin: /x/g.so\n");
  REQUIRE(c.snapshotters.size() == 2);
  const auto o = c.snapshotters[0].options(std::chrono::milliseconds(4000));
  CHECK(o.name == "orders");
  CHECK(o.threshold_events == 50);
  CHECK(o.batch_size == 200);
  CHECK(o.streams.alias_prefix == "orders:");
  CHECK(o.lease_ttl == std::chrono::milliseconds(4000));
  CHECK(c.snapshotters[1].threshold == 200);
  CHECK(c.snapshotters[1].interval_ms == 10000);
  CHECK(contains(config_error("snapshotters:\n  - name: a\n    plugin: /x.so\n    batch: 0\n"),
                 "snapshotters[0].batch"));
  CHECK(contains(config_error("snapshotters:\n  - name: a\n"), "needs a plugin path"));
  CHECK(contains(config_error("snapshotters:\n  - name: a\n    plugin: /x.so\n"
                              "  - name: a\n    plugin: /y.so\n"),
                 "duplicate snapshotter name 'a'"));
  CHECK(contains(config_error("snapshotters: {name: a}\n"), "expected a list of snapshotters"));
}

TEST_CASE("config_subscriptions_parse_into_typed_entries_with_the_table_defaults") {
  const auto c = config::parse(
      "daemon: {lease_ttl_ms: 30000}\n"
      "subscriptions:\n"
      "  - name: orders\n"
      "    plugin: /x/outbox.so\n"
      "    filter: {event_types: [OrderPlaced], stream_prefix: 'orders:'}\n"
      "    start_from: '42'\n"
      "    group: workers\n"
      "    partitions: 4\n"
      "    max_in_flight: 100\n"
      "    ack: in_transaction\n"
      "    retry: {max_attempts: 2}\n"
      "    settings: {table: outbox}\n"
      "  - name: audit\n"
      "    plugin: /x/outbox.so\n");
  REQUIRE(c.subscriptions.size() == 2);
  const auto& s = c.subscriptions[0];
  CHECK(s.unit_partitions() == std::vector<int>{0, 1, 2, 3});
  const auto o = s.options(std::chrono::milliseconds(30000));
  CHECK(o.group == std::optional<std::string>("workers"));
  CHECK(o.partitions == 4);
  CHECK(o.max_in_flight == std::optional<std::int64_t>(100));
  CHECK(o.ack_mode == AckMode::kManual);
  CHECK(o.max_attempts == 2);
  CHECK(o.start_from.to_string() == "after 42");
  CHECK(s.filter().alias_prefix == std::optional<std::string>("orders:"));
  CHECK(s.settings.at("table").as_string() == "outbox");
  const auto& a = c.subscriptions[1];  // every default from the key table
  CHECK(a.unit_partitions() == std::vector<int>{-1});
  CHECK(a.ack == "after_handler");
  CHECK(a.start_from == "beginning");
  CHECK(a.batch_size == 500);
  CHECK(a.retry.max_attempts == 5);
  CHECK(a.on_failure == "dead_letter");
  CHECK(a.options(std::chrono::milliseconds(30000)).ack_mode == AckMode::kAuto);
}

TEST_CASE("config_subscription_errors_name_the_key_path") {
  const std::string head = "subscriptions:\n  - name: orders\n    plugin: /x.so\n";
  CHECK(contains(config_error(head + "    filtr: {}\n"), "subscriptions[0].filtr"));
  CHECK(
      contains(config_error(head + "    filter: {types: [A]}\n"), "subscriptions[0].filter.types"));
  CHECK(contains(config_error(head + "    ack: later\n"), "subscriptions[0].ack"));
  CHECK(
      contains(config_error(head + "    start_from: yesterday\n"), "subscriptions[0].start_from"));
  CHECK(contains(config_error(head + "    partitions: 4\n"), "subscriptions[0].partitions"));
  CHECK(contains(config_error(head + "    group: g\n    partitions: 5000\n"),
                 "subscriptions[0].partitions"));
  CHECK(contains(config_error(head + "    group: 'bad/name'\n"), "subscriptions[0].group"));
  CHECK(contains(config_error(head + "    filter: {stream_ids: [nope]}\n"),
                 "subscriptions[0].filter.stream_ids"));
  CHECK(contains(config_error("subscriptions:\n  - name: 'a b'\n    plugin: /x.so\n"),
                 "subscriptions[0].name"));
  CHECK(contains(config_error("subscriptions:\n  - name: a\n"), "subscriptions[0].plugin"));
  CHECK(contains(config_error(head + "  - name: orders\n    plugin: /y.so\n"),
                 "duplicate subscription name"));
  CHECK(contains(config::schema_json(), "subscriptions[].filter.event_types"));
  CHECK(contains(config::reference_markdown(), "`subscriptions[].ack`"));
}
