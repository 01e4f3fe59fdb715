// rillflowd's subscription units end to end: real daemons sharing a partitioned consumer group
// (one killed with SIGKILL), SIGHUP adding and removing a subscription, and a failing handler's
// event parked and listed by the CLI. The handler is the example order_outbox plugin: one outbox
// row per event, written in the handler's transaction (ack: in_transaction).
#include "support/daemon_process.hpp"
#include "support/test_db.hpp"
#include "util/process.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <memory>
#include <thread>

using namespace rillflow;
using namespace rillflow::e2e;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

constexpr auto kBound = 90s;  // the machine may be busy: generous bounds, never sleeps

struct Sub {
  std::string name;
  std::string table;
  std::string group;  // "" = none
  int partitions = 0;
  std::string extra;  // more YAML keys, each line indented by 4
};

std::string config_yaml(const TestSchema& db, const std::vector<Sub>& subs) {
  std::string y = "database: {url_env: RF_E2E_DB_URL, require_url: true}\nschema: " + db.name() +
                  "\nhttp: {bind: 127.0.0.1, port: 0}\n"
                  "daemon: {lease_ttl_ms: 2000, poll_interval_ms: 200, drain_deadline_ms: 10000}\n"
                  "subscriptions:\n";
  for (const auto& s : subs) {
    y += "  - name: " + s.name +
         "\n    plugin: " RILLFLOW_ORDER_OUTBOX_PLUGIN
         "\n    ack: in_transaction\n    filter: {event_types: [OrderPlaced, Poison]}\n"
         "    settings: {table: " +
         s.table + ", fail_type: Poison}\n";
    if (!s.group.empty()) {
      y += "    group: " + s.group + "\n    partitions: " + std::to_string(s.partitions) + "\n";
    }
    y += s.extra;
  }
  return y;
}

void rewrite(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::vector<std::string> env_for(const TestSchema& db) {
  return {"RF_E2E_DB_URL=" + db.url()};
}

// One query's single integer (0 while the outbox table does not exist yet).
std::int64_t scalar(const TestSchema& db, const std::string& sql) {
  try {
    auto conn = db.raw();
    pqxx::nontransaction txn(conn);
    txn.exec("set search_path to \"" + db.name() + "\"");
    return txn.exec(sql)[0][0].as<std::int64_t>();
  } catch (const pqxx::undefined_table&) {
    return 0;
  }
}

std::int64_t rows(const TestSchema& db, const std::string& table) {
  return scalar(db, "select count(*) from " + table);
}

// Units of the subscription this daemon runs now (holding its subscriber).
int holding(DaemonProcess& d, const std::string& subscription) {
  const auto reply = http_get(d.port(), "/status");
  if (reply.status != 200) return -1;
  int n = 0;
  const auto status = parse_json(reply.body);  // kept: the loop reads into it
  for (const auto& s : status.at("subscriptions").as_array()) {
    if (s.at("name").as_string() != subscription) continue;
    for (const auto& u : s.at("units").as_array()) n += u.at("holding").as_bool() ? 1 : 0;
  }
  return n;
}

bool listed(DaemonProcess& d, const std::string& subscription) {
  const auto reply = http_get(d.port(), "/status");
  if (reply.status != 200) return false;
  const auto status = parse_json(reply.body);  // kept: the loop reads into it
  for (const auto& s : status.at("subscriptions").as_array()) {
    if (s.at("name").as_string() == subscription) return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "three_daemons_share_a_partitioned_group_and_a_kill_9_loses_nothing_keeps_stream_order_and_"
    "redelivers_only_unacked_events") {
  TestSchema db;
  const auto config =
      write_temp("group.yaml", config_yaml(db, {{"orders", "order_outbox", "workers", 6, ""}}));
  std::vector<std::unique_ptr<DaemonProcess>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<DaemonProcess>(RILLFLOWD_PATH, config, env_for(db)));
  }
  for (auto& n : nodes) REQUIRE(n->wait_ready(kBound));
  // Membership spreads the six partitions over the three daemons (two each).
  REQUIRE(eventually(
      [&] {
        for (auto& n : nodes) {
          if (holding(*n, "orders") < 1) return false;
        }
        return true;
      },
      kBound));

  // 40 streams, each appended to 15 times (5 events a time) while one daemon is killed.
  constexpr int kStreams = 40, kRounds = 15, kPerAppend = 5;
  constexpr std::int64_t kTotal = kStreams * kRounds * kPerAppend;
  std::vector<Uuid> streams;
  for (int s = 0; s < kStreams; ++s) streams.push_back(new_uuid());
  std::atomic<bool> appended{false};
  std::thread appender([&] {
    for (int r = 0; r < kRounds; ++r) {
      for (const auto& id : streams) {
        std::vector<Event> batch;
        for (int i = 0; i < kPerAppend; ++i) batch.emplace_back("OrderPlaced", r * kPerAppend + i);
        db.store().events().append_stream(id, Expected::any(), batch);
      }
    }
    appended = true;
  });
  const bool some = eventually([&] { return rows(db, "order_outbox") >= 400; }, kBound);
  nodes[1]->signal(SIGKILL);
  CHECK(nodes[1]->wait_exit(10s) == -1);
  const auto at_kill = rows(db, "order_outbox");
  appender.join();
  REQUIRE(some);
  MESSAGE("outbox rows when the daemon was killed: " << at_kill << " of " << kTotal);

  // The survivors take the dead one's partitions over (after its 2 s lease) and finish.
  CHECK(eventually([&] { return rows(db, "order_outbox") >= kTotal; }, kBound));
  CHECK(eventually([&] { return holding(*nodes[0], "orders") + holding(*nodes[2], "orders") == 6; },
                   kBound));
  CHECK(rows(db, "order_outbox") == kTotal);
  // Exactly one row per event: acknowledged events were never delivered again.
  CHECK(scalar(db, "select count(distinct global_seq) from order_outbox") == kTotal);
  // Per-stream order: within each stream, rows were written in stream_seq order, without gaps.
  CHECK(scalar(db,
               "select count(*) from (select stream_seq, lag(stream_seq) over (partition by "
               "stream_id order by id) as prev from order_outbox) x where prev is not null and "
               "stream_seq <> prev + 1") == 0);
  CHECK(scalar(db, "select count(distinct stream_id) from order_outbox") == kStreams);
  // Nothing is left in flight or parked.
  CHECK(eventually(
      [&] {
        return scalar(db,
                      "select count(*) from subscription_deliveries where subscription = "
                      "'orders' and not acked") == 0;
      },
      kBound));
  CHECK(scalar(db, "select count(*) from parked") == 0);

  // /status shows the group: partitions with their owners, members, lag.
  const auto status = parse_json(http_get(nodes[0]->port(), "/status").body);
  const auto& sub = status.at("subscriptions").at(0).as_object();
  CHECK(sub.at("name").as_string() == "orders");
  CHECK(sub.at("group").as_string() == "workers");
  CHECK(sub.at("units").as_array().size() == 6);
  CHECK(eventually(
      [&] {
        const auto s = parse_json(http_get(nodes[0]->port(), "/status").body)
                           .at("subscriptions")
                           .at(0)
                           .as_object();
        return s.contains("partition_owners") && s.at("partition_owners").as_array().size() == 6 &&
               s.at("lag_events").as_int64() == 0;
      },
      kBound));
  const auto metrics = http_get(nodes[0]->port(), "/metrics").body;
  CHECK(metrics.find(
            "rillflow_subscription_acked_total{group=\"workers\",subscription=\"orders\"}") !=
        std::string::npos);
  CHECK(
      metrics.find("rillflow_subscription_lag_events{group=\"workers\",subscription=\"orders\"}") !=
      std::string::npos);
}

TEST_CASE(
    "sighup_adds_and_removes_a_subscription_and_a_failing_handlers_event_is_parked_and_listed_by_"
    "the_cli") {
  TestSchema db;
  const Sub orders{"orders", "order_outbox", "", 0,
                   "    retry: {max_attempts: 2, base_delay_ms: 50, max_delay_ms: 100}\n"};
  const Sub audit{"audit", "audit_outbox", "", 0, ""};
  const auto config = write_temp("reload.yaml", config_yaml(db, {orders}));
  DaemonProcess d(RILLFLOWD_PATH, config, env_for(db));
  REQUIRE(d.wait_ready(kBound));

  const auto stream = new_uuid();
  auto append = [&](const std::string& type, int n) {
    std::vector<Event> batch;
    for (int i = 0; i < n; ++i) batch.emplace_back(type, i);
    db.store().events().append_stream(stream, Expected::any(), batch);
  };
  append("OrderPlaced", 5);
  append("Poison", 1);
  append("OrderPlaced", 5);
  // The poison event is tried twice, parked, and the events after it still arrive.
  REQUIRE(eventually([&] { return rows(db, "order_outbox") == 10; }, kBound));
  const auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{RILLFLOW_CLI_PATH, "--database-url", db.url(),
                                  "--schema",        db.name(),        "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return util::run_process(argv);
  };
  const auto parked = cli({"subscriptions", "parked-list", "orders"});
  REQUIRE(parked.exit_code == 0);
  const auto entries = parse_json(parked.output).as_array();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].at("event").at("type").as_string() == "Poison");
  CHECK(entries[0].at("attempts").as_int64() == 2);
  CHECK(std::string(entries[0].at("error").as_string()).find("fail_type") != std::string::npos);

  // SIGHUP adds `audit`: it starts from the beginning of the feed.
  rewrite(config, config_yaml(db, {orders, audit}));
  d.signal(SIGHUP);
  CHECK(eventually([&] { return rows(db, "audit_outbox") == 10; }, kBound));
  CHECK(eventually([&] { return holding(d, "audit") == 1; }, kBound));

  // SIGHUP removes it again: its lease is released and it receives nothing more.
  rewrite(config, config_yaml(db, {orders}));
  d.signal(SIGHUP);
  CHECK(eventually([&] { return !listed(d, "audit"); }, kBound));
  CHECK(eventually(
      [&] {
        return scalar(db,
                      "select count(*) from work_units where kind = 'subscription' and name = "
                      "'audit' and lease_owner is not null") == 0;
      },
      kBound));
  append("OrderPlaced", 3);
  CHECK(eventually([&] { return rows(db, "order_outbox") == 13; }, kBound));
  CHECK(rows(db, "audit_outbox") == 10);
  CHECK(scalar(db, "select count(*) from subscriptions where name = 'audit'") == 1);  // kept

  // The parked event goes back once through the CLI: it fails again and stays parked.
  const auto id = entries[0].at("id").as_int64();
  CHECK(cli({"subscriptions", "parked-requeue", "orders", "--id", std::to_string(id)}).exit_code ==
        0);
  CHECK(eventually(
      [&] {
        const auto again = cli({"subscriptions", "parked-list", "orders"});
        if (again.exit_code != 0) return false;
        const auto list = parse_json(again.output).as_array();
        return list.size() == 1 && !list[0].at("requeued").as_bool() &&
               list[0].at("attempts").as_int64() > 2;
      },
      kBound));
  CHECK(rows(db, "order_outbox") == 13);
  d.signal(SIGTERM);
  CHECK(d.wait_exit(30s) == 0);
}
