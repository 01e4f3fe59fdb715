// For operators: waiting for a projection (wait_for), what holds a projection back
// (blocked_by), and traces of a correlation id (EventStore::trace, Mermaid).
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

class Counter : public ProjectionHandler {
 public:
  void apply(const EventEnvelope&, Transaction&) override {
    ++handled;
    applied_at = std::chrono::steady_clock::now().time_since_epoch().count();
  }
  std::atomic<int> handled{0};
  std::atomic<std::chrono::steady_clock::rep> applied_at{0};  ///< of the last event handed over
};

ProjectionDaemon daemon_for(TestSchema& db, std::shared_ptr<Counter> handler) {
  return ProjectionDaemon::builder(db.store()).register_projection("p", std::move(handler)).build();
}

// An append in a transaction the test holds open (draws a global_seq, commits when told).
std::int64_t append_raw(pqxx::work& txn, const std::string& schema, const Uuid& stream,
                        const std::string& type = "Held") {
  const std::string s = "\"" + schema + "\"";
  txn.exec_params("insert into " + s + ".streams (stream_id, version) values ($1::uuid, 1)",
                  to_string(stream));
  return txn
      .exec_params("insert into " + s +
                       ".events (stream_id, stream_seq, event_type, body) values ($1::uuid, 1, $2, "
                       "'{}') returning global_seq",
                   to_string(stream), type)[0][0]
      .as<std::int64_t>();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("wait_for_returns_once_the_projection_handled_the_append") {
  TestSchema db;
  auto handler = std::make_shared<Counter>();
  auto d = daemon_for(db, handler);
  d.run_until_idle();  // stores the projection's checkpoint row
  auto projections = db.store().projections();
  const auto appended = db.store().events().append_stream(new_uuid(), Expected::any(),
                                                          {Event("A", 1), Event("B", 2)});
  // Not handled yet: a zero timeout checks once and names what is left.
  try {
    projections.wait_for("p", appended, 0ms);
    FAIL("wait_for returned before the projection ran");
  } catch (const ProjectionWaitTimeout& e) {
    CHECK(e.code() == ErrorCode::kTimeout);
    CHECK(e.committed());
    CHECK(e.behind() == 2);
    CHECK(e.projection_at() == 0);
    CHECK(contains(e.what(),
                   "has not handled global_seq " + std::to_string(appended.last_global_seq)));
    CHECK(contains(e.what(), "2 committed event(s)"));
  }
  d.run_until_idle();
  const auto r = projections.wait_for("p", appended, 0ms);
  CHECK(r.checks == 1);
  CHECK_FALSE(r.parked);
  MESSAGE("one check (already handled): " << r.waited.count() << " us");
  CHECK(projections.wait_for("p", 0, 0ms).checks == 1);

  // With the projection running beside it: wait_for returns once the loop has handled it.
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.run_loop(stop, 2ms); });
  const auto appended_at = std::chrono::steady_clock::now();
  const auto later =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("C", 3)});
  const auto waited = projections.wait_for("p", later, 10s);
  const auto returned_at = std::chrono::steady_clock::now();
  stop = true;
  loop.join();
  CHECK(handler->handled >= 3);
  CHECK(waited.waited < 10s);
  const auto us = [](auto span) {
    return std::chrono::duration_cast<std::chrono::microseconds>(span).count();
  };
  const auto applied = std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(handler->applied_at.load()));
  CHECK(applied <= returned_at);
  MESSAGE("after append (run_loop, 2 ms idle poll): handler called at "
          << us(applied - appended_at) << " us, wait_for returned at "
          << us(returned_at - appended_at) << " us (" << waited.checks << " checks)");
}

TEST_CASE("wait_for_is_exact_when_a_lower_position_commits_after_a_higher_one") {
  TestSchema db;
  auto d = daemon_for(db, std::make_shared<Counter>());
  d.run_until_idle();
  auto projections = db.store().projections();
  auto conn = db.raw();
  pqxx::work held(conn);
  const auto held_seq = append_raw(held, db.name(), new_uuid());
  const auto later =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("L", 1)});
  REQUIRE(later.last_global_seq > held_seq);
  d.run_until_idle();
  CHECK(projections.wait_for("p", later, 0ms).checks == 1);
  // Not committed yet: a timeout that says so.
  try {
    projections.wait_for("p", held_seq, 0ms);
    FAIL("returned for an uncommitted event");
  } catch (const ProjectionWaitTimeout& e) {
    CHECK_FALSE(e.committed());
    CHECK(contains(e.what(), "no committed event has that position"));
  }
  held.commit();
  // Committed, and the projection's last_global_seq is already beyond it: still not handled.
  REQUIRE(d.status("p")->last_global_seq > held_seq);
  try {
    projections.wait_for("p", held_seq, 0ms);
    FAIL("a last_global_seq beyond the position is not proof it was handled");
  } catch (const ProjectionWaitTimeout& e) {
    CHECK(e.committed());
    CHECK(e.behind() == 1);
  }
  d.run_until_idle();
  CHECK(projections.wait_for("p", held_seq, 0ms).checks == 1);
}

TEST_CASE("wait_for_names_unknown_projections_bad_arguments_and_a_paused_projection") {
  TestSchema db;
  auto projections = db.store().projections();
  CHECK_THROWS_AS(projections.wait_for("nope", 1, 0ms), NotFound);
  CHECK_THROWS_AS(projections.blocked_by("nope"), NotFound);
  try {
    projections.wait_for("", 1, 0ms);
    FAIL("empty name accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
  }
  auto d = daemon_for(db, std::make_shared<Counter>());
  d.run_until_idle();
  CHECK_THROWS_AS(projections.wait_for("p", -1, 0ms), Error);
  d.pause("p");
  const auto appended =
      db.store().events().append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
  d.run_until_idle();
  const auto start = std::chrono::steady_clock::now();
  try {
    projections.wait_for("p", appended, 30ms);
    FAIL("a paused projection reached the position");
  } catch (const ProjectionWaitTimeout& e) {
    CHECK(contains(e.what(), "paused"));
    CHECK(std::chrono::steady_clock::now() - start >= 30ms);
  }
}

TEST_CASE("blocked_by_names_the_open_appending_transaction_a_projection_waits_on") {
  TestSchema db;
  auto d = daemon_for(db, std::make_shared<Counter>());
  d.run_until_idle();
  auto projections = db.store().projections();
  CHECK(projections.blocked_by("p").empty());

  // An open transaction with an xid that appended nothing is no blocker (R2)...
  auto other = db.raw();
  pqxx::work unrelated(other);
  unrelated.exec("create temporary table scratch (x int)");
  const auto unrelated_xid =
      unrelated.exec("select pg_current_xact_id()::text::bigint")[0][0].as<std::int64_t>();

  // ...an appending one is, once the projection has passed a tick it was open in.
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec("set application_name = 'held-appender'");
  pqxx::work held(conn);
  append_raw(held, db.name(), new_uuid());
  const auto held_pid = held.exec("select pg_backend_pid()")[0][0].as<int>();
  const auto held_xid =
      held.exec("select pg_current_xact_id()::text::bigint")[0][0].as<std::int64_t>();
  CHECK(projections.blocked_by("p").empty());  // no tick has seen it yet
  db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Later", 1)});
  d.run_until_idle();

  const auto blockers = projections.blocked_by("p");
  REQUIRE(blockers.size() == 1);
  const auto& b = blockers[0];
  CHECK(b.pid == held_pid);
  CHECK(b.xid == held_xid);
  CHECK(b.xid != unrelated_xid);
  REQUIRE(b.age_seconds);
  CHECK(*b.age_seconds >= 0);
  CHECK(b.state == std::optional<std::string>("idle in transaction"));
  CHECK(b.application_name == std::optional<std::string>("held-appender"));
  REQUIRE(b.query);
  CHECK(contains(*b.query, "pg_current_xact_id"));
  CHECK(contains(b.message(), "waiting for transaction " + std::to_string(held_xid) + " (pid " +
                                  std::to_string(held_pid) + ", open "));
  const auto j = to_json(b).as_object();
  CHECK(j.at("pid").as_int64() == held_pid);
  CHECK(j.at("message").as_string() == b.message());

  held.commit();
  d.run_until_idle();
  CHECK(projections.blocked_by("p").empty());
  unrelated.abort();
}

TEST_CASE("trace_links_a_known_chain_across_streams_and_renders_golden_mermaid") {
  TestSchema db;
  auto events = db.store().events();
  const auto correlation = parse_uuid("00000000-0000-4000-8000-000000000001");
  const auto command = parse_uuid("00000000-0000-4000-8000-0000000000c0");
  const auto order = db.store().resolve_stream_alias("orders:1");
  const auto payment = db.store().resolve_stream_alias("payments:\"1\"; %% <br/> #x");
  // Noise: another correlation id, and none.
  events.append_with(order, Expected::any(), {Event("Noise", 0)},
                     AppendOptions{{}, {}, new_uuid(), {}});
  events.append_stream(new_uuid(), Expected::any(), {Event("Unrelated", 0)});

  events.append_with(order, Expected::any(), {Event("OrderPlaced", 1)},
                     AppendOptions{{}, command, correlation, {}});
  const auto placed = events.read_stream(order).back();
  events.append_with(payment, Expected::any(), {Event("PaymentRequested", 2)},
                     AppendOptions{{}, event_id(placed), correlation, {}});
  const auto requested = events.read_stream(payment).back();
  // A hostile event type, with an explicit event_id header.
  const auto captured_id = parse_uuid("00000000-0000-4000-8000-0000000000aa");
  events.append_with(payment, Expected::any(), {Event("Captured\n  s1->>s1: injected", 3)},
                     AppendOptions{Json(boost::json::object{{"event_id", to_string(captured_id)}}),
                                   event_id(requested),
                                   correlation,
                                   {}});
  events.append_with(order, Expected::any(), {Event("OrderPaid", 4)},
                     AppendOptions{{}, captured_id, correlation, {}});

  const auto t = events.trace(correlation);
  REQUIRE(t.events.size() == 4);
  CHECK(t.events[0].event.type == "OrderPlaced");
  CHECK_FALSE(t.events[0].caused_by);  // its cause is a command, outside the trace
  CHECK(t.events[1].caused_by == t.events[0].event.global_seq);
  CHECK(t.events[2].caused_by == t.events[1].event.global_seq);
  CHECK(t.events[2].id == captured_id);
  CHECK(t.events[3].caused_by == t.events[2].event.global_seq);
  CHECK(t.events[0].stream_alias == std::optional<std::string>("orders:1"));
  CHECK(event_id(placed) != event_id(requested));

  const std::string golden =
      "sequenceDiagram\n"
      "  participant s1 as orders#58;1\n"
      "  participant s2 as payments#58;#34;1#34;#59; #37;#37; #60;br/#62; #35;x\n"
      "  s1->>s1: #35;3 OrderPlaced\n"
      "  s1->>s2: #35;4 PaymentRequested (after #35;3)\n"
      "  s2->>s2: #35;5 Captured#10;  s1-#62;#62;s1#58; injected (after #35;4)\n"
      "  s2->>s1: #35;6 OrderPaid (after #35;5)\n";
  CHECK(to_mermaid(t) == golden);

  const auto j = to_json(t).as_object();
  CHECK(j.at("correlation_id").as_string() == to_string(correlation));
  CHECK(j.at("events").as_array().size() == 4);
  CHECK(j.at("events").as_array()[3].as_object().at("caused_by").as_int64() == 6 - 1);
  CHECK(events.trace(new_uuid()).events.empty());
}

TEST_CASE("mermaid_labels_escape_everything_but_plain_text") {
  CHECK(mermaid_label("Order Placed_1.2") == "Order Placed_1.2");
  CHECK(mermaid_label("a;b:c#d") == "a#59;b#58;c#35;d");
  CHECK(mermaid_label("\xc3\xa9") == "#233;");
  CHECK(mermaid_label("\xff") == "#65533;");
  CHECK(mermaid_label("\xe2\x82") == "#65533;#65533;");
  CHECK(mermaid_label(" x ") == "#32;x#32;");
  CHECK(mermaid_label("") == "#32;");
  CHECK(mermaid_label("abcdef", 3) == "abc...");
}

TEST_CASE("blocked_consumers_lists_every_held_back_unit_in_one_call_with_the_query_redacted") {
  TestSchema db;
  auto d = ProjectionDaemon::builder(db.store())
               .register_projection("p", std::make_shared<Counter>())
               .register_projection("q", std::make_shared<Counter>())
               .build();
  d.run_until_idle();
  auto projections = db.store().projections();
  CHECK(projections.blocked_consumers().empty());
  // What the status refresh pays per second (printed, not asserted: the machine is shared).
  const auto per_call_us = [&] {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) (void)projections.blocked_consumers();
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 start)
               .count() /
           50;
  };
  MESSAGE("blocked_consumers(), nothing appending: " << per_call_us() << " us per call");

  auto conn = db.raw();
  pqxx::work held(conn);
  append_raw(held, db.name(), new_uuid());
  const auto held_pid = held.exec("select pg_backend_pid()")[0][0].as<int>();
  // Its last statement quotes a URL with a password and is longer than what is reported.
  held.exec("select 'postgresql://app:s3cret@db.internal/prod' as target, '" +
            std::string(200, 'x') + "' as padding");
  db.store().events().append_stream(new_uuid(), Expected::any(), {Event("Later", 1)});
  d.run_until_idle();

  const auto all = projections.blocked_consumers();
  MESSAGE("blocked_consumers(), one held append, two consumers: " << per_call_us()
                                                                  << " us per call");
  REQUIRE(all.size() == 2);
  CHECK(all[0].kind == "projection");
  CHECK(all[0].name == "p");
  CHECK(all[1].name == "q");
  for (const auto& c : all) {
    CHECK(c.blocker.pid == held_pid);
    CHECK(c.blocker.blocked_seconds >= 0);
    REQUIRE(c.blocker.query);
    CHECK(c.blocker.query->size() <= 120);
    CHECK(contains(*c.blocker.query, "postgresql://***@db.internal/prod"));
    CHECK_FALSE(contains(*c.blocker.query, "s3cret"));
  }
  const auto one = projections.blocked_by("q");
  REQUIRE(one.size() == 1);
  CHECK(one[0].xid == all[1].blocker.xid);
  CHECK(one[0].query == all[1].blocker.query);

  held.commit();
  d.run_until_idle();
  CHECK(projections.blocked_consumers().empty());
}
