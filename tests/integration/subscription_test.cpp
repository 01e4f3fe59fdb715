// Subscriptions and consumer groups against real PostgreSQL: ack modes, restarts, the feed's
// ordering race, max_in_flight, a crashed group member, partition rebalancing, hostile names.

#include "subscriptions/subscription_state.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

std::int64_t scalar(TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

std::string q(TestSchema& db) {
  return "\"" + db.name() + "\"";
}

// Every event delivered until none arrives within `wait`.
std::vector<EventEnvelope> drain(SubscriptionReceiver& rx, std::chrono::milliseconds wait = 0ms) {
  std::vector<EventEnvelope> out;
  while (auto e = rx.next(wait)) out.push_back(std::move(*e));
  return out;
}

std::vector<std::int64_t> seqs(const std::vector<EventEnvelope>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.global_seq);
  return out;
}

std::vector<std::int64_t> append_pings(Store& store, int n, const std::string& type = "Ping") {
  std::vector<std::int64_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(store.events()
                      .append_stream(new_uuid(), Expected::any(), {Event(type, i)})
                      .first_global_seq);
  }
  return out;
}

// The stored checkpoint of a unit: "from_tick/to_tick/after_seq".
std::string checkpoint(TestSchema& db, const std::string& unit) {
  auto conn = db.raw();
  const auto r = pqxx::nontransaction(conn).exec_params(
      "select from_tick || '/' || to_tick || '/' || after_seq from " + q(db) +
          ".work_units where kind = 'subscription' and name = $1",
      unit);
  return r.empty() ? "none" : r[0][0].as<std::string>();
}

// The side effect ack_in commits with: an outbox table in the test schema.
void create_outbox(TestSchema& db, const std::string& columns = "seq bigint") {
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec("create table " + q(db) + ".outbox (" + columns + ")");
}

SubscriptionOptions manual() {
  SubscriptionOptions o;
  o.ack_mode = AckMode::kManual;
  return o;
}

// Waits until `done()` holds, calling `step()` meanwhile; fails after `limit` (generous: a
// busy machine is a normal machine).
template <class Step, class Done>
void await(Step step, Done done, std::chrono::milliseconds limit = 90s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "condition not reached in time");
    step();
  }
}

}  // namespace

TEST_CASE("subscription_delivers_filtered_events_and_a_restart_resumes_from_the_checkpoint") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const SubscriptionFilter filter{{"Ping"}, {}, std::nullopt};
  const auto pings = append_pings(db.store(), 3);
  append_pings(db.store(), 2, "Other");
  {
    auto [handle, rx] = subs.subscribe("s1", filter);
    CHECK(seqs(drain(rx)) == pings);  // auto ack: each acked when the next is asked for
  }
  const auto more = append_pings(db.store(), 2);
  auto [handle, rx] = subs.subscribe("s1", filter);
  CHECK(seqs(drain(rx)) == more);
  const auto info = subs.get("s1");
  REQUIRE(info);
  CHECK(info->last_global_seq >= more.back());
  CHECK(info->filter == filter);
}

TEST_CASE("subscription_auto_ack_redelivers_the_event_whose_handler_did_not_return") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const auto pings = append_pings(db.store(), 3);
  {
    auto [handle, rx] = subs.subscribe("s1", {});
    CHECK(rx.next(0ms)->global_seq == pings[0]);
    CHECK(rx.next(0ms)->global_seq == pings[1]);  // acks pings[0]
    // The handler of pings[1] never returns: the process goes away.
  }
  auto [handle, rx] = subs.subscribe("s1", {});
  CHECK(seqs(drain(rx)) == std::vector<std::int64_t>{pings[1], pings[2]});
}

TEST_CASE("subscription_run_acks_after_the_handler_and_parks_an_event_that_keeps_failing") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const auto good = append_pings(db.store(), 2);
  const auto bad = append_pings(db.store(), 1, "Bad");
  const auto after = append_pings(db.store(), 1);
  auto opts = SubscriptionOptions{};
  opts.max_attempts = 3;
  opts.retry_base_delay = 1ms;
  opts.poll_interval = 20ms;
  std::mutex m;
  std::vector<std::int64_t> handled;
  std::map<std::int64_t, int> attempts;
  {
    auto [handle, rx] = subs.subscribe("s1", {}, opts);
    std::stop_source stop;
    std::thread t([&] {
      rx.run(
          [&](const EventEnvelope& e) {
            std::lock_guard l(m);
            ++attempts[e.global_seq];
            if (e.type == "Bad") throw std::runtime_error("cannot handle Bad");
            handled.push_back(e.global_seq);
            if (e.global_seq == after[0]) stop.request_stop();
          },
          stop.get_token());
    });
    t.join();
  }
  CHECK(handled == std::vector<std::int64_t>{good[0], good[1], after[0]});
  CHECK(attempts[bad[0]] == 3);
  auto parked = subs.parked("s1");
  REQUIRE(parked.size() == 1);
  CHECK(parked[0].event.global_seq == bad[0]);
  CHECK(parked[0].attempts == 3);
  CHECK(parked[0].error.find("cannot handle Bad") != std::string::npos);

  // Requeued, it is delivered once more (only it); acknowledged, it leaves the parked list.
  CHECK(subs.requeue_parked("s1", parked[0].id));
  CHECK_FALSE(subs.requeue_parked("s1", parked[0].id + 1000));
  auto [handle, rx] = subs.subscribe("s1", {}, manual());
  const auto again = drain(rx);
  REQUIRE(again.size() == 1);
  CHECK(again[0].global_seq == bad[0]);
  handle.ack(bad[0]);
  CHECK(subs.parked("s1").empty());
}

TEST_CASE("subscription_manual_out_of_order_acks_keep_the_checkpoint_at_the_lowest_unacked") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const auto p = append_pings(db.store(), 4);
  {
    auto [handle, rx] = subs.subscribe("s1", {}, manual());
    CHECK(seqs(drain(rx)) == p);
    handle.ack(p[2]);
    handle.ack(p[0]);
    CHECK(checkpoint(db, "s1").ends_with("/" + std::to_string(p[0])));
    handle.ack(p[3]);
    // p[1] is not acknowledged: the checkpoint stays just before it.
    CHECK(checkpoint(db, "s1").ends_with("/" + std::to_string(p[0])));
  }
  auto [handle, rx] = subs.subscribe("s1", {}, manual());
  CHECK(seqs(drain(rx)) == std::vector<std::int64_t>{p[1]});  // exactly what was not acked
  handle.ack(p[1]);
  CHECK(scalar(db, "select count(*) from " + q(db) + ".subscription_deliveries") == 0);
}

TEST_CASE("subscription_ack_in_commits_with_the_callers_transaction_and_a_rollback_leaves_it") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  create_outbox(db, "seq bigint primary key");
  const auto p = append_pings(db.store(), 2);
  {
    auto [handle, rx] = subs.subscribe("s1", {}, manual());
    const auto e = rx.next(0ms);
    REQUIRE(e);
    const auto before = checkpoint(db, "s1");
    CHECK_THROWS(subs.in_transaction([&](Transaction& txn) {
      txn.exec("insert into " + q(db) + ".outbox values ($1)", e->global_seq);
      handle.ack_in(txn, e->global_seq);
      throw std::runtime_error("side effect failed");
    }));
    CHECK(rx.next(0ms)->global_seq == p[1]);
    CHECK(checkpoint(db, "s1") == before);
  }
  {
    auto [handle, rx] = subs.subscribe("s1", {}, manual());
    const auto e = rx.next(0ms);
    REQUIRE(e);
    CHECK(e->global_seq == p[0]);  // the rolled-back ack left it unacknowledged
    subs.in_transaction([&](Transaction& txn) {
      txn.exec("insert into " + q(db) + ".outbox values ($1)", e->global_seq);
      handle.ack_in(txn, e->global_seq);
    });
    CHECK(rx.next(0ms)->global_seq == p[1]);
    CHECK_FALSE(rx.next(0ms));  // the receiver's poll writes the checkpoint
    CHECK(checkpoint(db, "s1").ends_with("/" + std::to_string(p[0])));
  }
  auto [handle, rx] = subs.subscribe("s1", {}, manual());
  CHECK(seqs(drain(rx)) == std::vector<std::int64_t>{p[1]});
  CHECK(scalar(db, "select count(*) from " + q(db) + ".outbox") == 1);
}

// A member taken for gone (no heartbeat within the lease TTL) whose event went to another
// member: its ack_in refuses, so its side effects roll back instead of committing twice.
TEST_CASE("ack_in_of_an_event_taken_over_by_another_member_throws_and_commits_nothing") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  create_outbox(db);
  const auto outbox = [&](Transaction& txn, std::int64_t seq) {
    txn.exec("insert into " + q(db) + ".outbox values ($1)", seq);
  };
  const auto p = append_pings(db.store(), 1);
  SubscriptionOptions o = manual();
  o.group = "g";
  o.lease_ttl = 300ms;
  o.member_id = "a";
  auto [ha, ra] = subs.subscribe("s", {}, o);
  const auto ea = ra.next(0ms);
  REQUIRE(ea);
  o.member_id = "b";
  auto [hb, rb] = subs.subscribe("s", {}, o);
  std::optional<EventEnvelope> eb;
  await([&] { eb = rb.next(50ms); }, [&] { return eb.has_value(); });  // after a's TTL
  CHECK(eb->global_seq == p[0]);
  subs.in_transaction([&](Transaction& txn) {
    outbox(txn, eb->global_seq);
    hb.ack_in(txn, eb->global_seq);
  });
  try {
    subs.in_transaction([&](Transaction& txn) {
      outbox(txn, ea->global_seq);
      ha.ack_in(txn, ea->global_seq);
    });
    FAIL("ack_in of a taken-over event did not throw");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kLeaseLost);
    CHECK(std::string(e.what()).find("handed to another member") != std::string::npos);
  }
  CHECK(scalar(db, "select count(*) from " + q(db) + ".outbox") == 1);
  CHECK_FALSE(rb.next(0ms));
  CHECK(subs.group_status("s", "g").in_flight == 0);
}

// The caller's transaction fails after ack_in (a failed commit): the event is retried, and the
// retry's ack_in acknowledges it.
TEST_CASE("a_transaction_that_fails_after_ack_in_is_retried_and_its_retry_acknowledges") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  create_outbox(db);
  const auto p = append_pings(db.store(), 2);
  SubscriptionOptions o = manual();
  o.retry_base_delay = 1ms;
  o.max_attempts = 3;
  std::map<std::int64_t, int> attempts;
  {
    auto [handle, rx] = subs.subscribe("s", {}, o);
    std::size_t handled = 0;
    const auto handler = [&](const EventEnvelope& e) {
      const int attempt = ++attempts[e.global_seq];
      subs.in_transaction([&](Transaction& txn) {
        txn.exec("insert into " + q(db) + ".outbox values ($1)", e.global_seq);
        handle.ack_in(txn, e.global_seq);
        if (attempt == 1) throw std::runtime_error("the commit failed");
      });
    };
    await([&] { handled += rx.run_available(handler, 10).handled; }, [&] { return handled == 2; });
  }
  CHECK(attempts[p[0]] == 2);
  CHECK(attempts[p[1]] == 2);
  CHECK(scalar(db, "select count(*) from " + q(db) + ".outbox") == 2);
  CHECK(subs.parked("s").empty());
  auto [handle, rx] = subs.subscribe("s", {}, o);
  CHECK(drain(rx).empty());  // both acknowledged
}

TEST_CASE("ack_in_after_the_subscribers_lease_was_taken_over_throws_lease_lost") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const auto p = append_pings(db.store(), 1);
  SubscriptionOptions o = manual();
  o.lease_ttl = 300ms;
  auto [ha, ra] = subs.subscribe("s", {}, o);
  const auto ea = ra.next(0ms);
  REQUIRE(ea);
  auto [hb, rb] = subs.subscribe("s", {}, o);  // waits for the lease, then takes it over
  std::optional<EventEnvelope> eb;
  await([&] { eb = rb.next(50ms); }, [&] { return eb.has_value(); });
  CHECK(eb->global_seq == p[0]);
  CHECK_THROWS_AS(subs.in_transaction([&](Transaction& txn) { ha.ack_in(txn, ea->global_seq); }),
                  LeaseLost);
  hb.ack(eb->global_seq);
  ha.close();
  hb.close();
  auto [hc, rc] = subs.subscribe("s", {}, o);
  CHECK(drain(rc).empty());  // acked once, by the lease's holder
}

TEST_CASE("subscription_skips_nothing_when_a_lower_sequence_commits_after_a_higher_one") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  auto [handle, rx] = subs.subscribe("s1", {});
  CHECK(drain(rx).empty());

  auto conn = db.raw();
  pqxx::work held(conn);
  const auto stream = to_string(new_uuid());
  held.exec_params("insert into " + q(db) + ".streams (stream_id, version) values ($1::uuid, 1)",
                   stream);
  const auto held_seq =
      held.exec_params1("insert into " + q(db) +
                            ".events (stream_id, stream_seq, event_type, body) "
                            "values ($1::uuid, 1, 'Held', '{}') returning global_seq",
                        stream)[0]
          .as<std::int64_t>();
  const auto later = append_pings(db.store(), 1);
  CHECK(later[0] > held_seq);
  CHECK(seqs(drain(rx)) == later);  // only the committed one
  held.commit();
  CHECK(seqs(drain(rx)) == std::vector<std::int64_t>{held_seq});  // not skipped
  CHECK(drain(rx).empty());
}

TEST_CASE("subscription_filters_by_stream_alias_prefix_and_starts_at_the_end") {
  TestSchema db;
  auto& store = db.store();
  auto subs = store.subscriptions();
  const auto order = store.resolve_stream_alias("orders:1");
  const auto user = store.resolve_stream_alias("users:1");
  store.events().append_stream(order, Expected::any(), {Event("Placed", 1)});
  SubscriptionOptions late;
  late.start_from = StartFrom::end();
  subs.create("late", {}, late);
  SubscriptionFilter by_alias;
  by_alias.alias_prefix = "orders:";
  auto [h1, rx1] = subs.subscribe("orders", by_alias);
  const auto a = store.events().append_stream(user, Expected::any(), {Event("Joined", 1)});
  const auto b = store.events().append_stream(order, Expected::any(), {Event("Paid", 1)});
  const auto got = drain(rx1);
  REQUIRE(got.size() == 2);
  CHECK(got[0].type == "Placed");
  CHECK(got[1].global_seq == b.first_global_seq);
  auto [h2, rx2] = subs.subscribe("late", {});
  CHECK(seqs(drain(rx2)) == std::vector<std::int64_t>{a.first_global_seq, b.first_global_seq});
  SubscriptionOptions after;
  after.start_from = StartFrom::after(a.first_global_seq);
  auto [h3, rx3] = subs.subscribe("after", {}, after);
  CHECK(seqs(drain(rx3)) == std::vector<std::int64_t>{b.first_global_seq});
}

TEST_CASE("subscription_admin_pause_resume_reset_and_unknown_names") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const auto p = append_pings(db.store(), 2);
  subs.create("s1", {});
  subs.pause("s1");
  {
    auto [handle, rx] = subs.subscribe("s1", {});
    CHECK(drain(rx).empty());
    subs.resume("s1");
    CHECK(seqs(drain(rx)) == p);
  }
  subs.reset("s1", StartFrom::after(p[0]));
  {
    auto [handle, rx] = subs.subscribe("s1", {});
    CHECK(seqs(drain(rx)) == std::vector<std::int64_t>{p[1]});
  }
  CHECK_THROWS_AS(subs.pause("nope"), NotFound);
  CHECK_THROWS_AS(subs.remove("nope"), NotFound);
  CHECK_THROWS_AS(subs.group_status("s1", "nope"), NotFound);
  CHECK_FALSE(subs.get("nope"));
  CHECK_THROWS_AS(subs.create("s1", {{"Other"}, {}, std::nullopt}), Error);
  subs.remove("s1");
  CHECK(subs.list().empty());
  CHECK(scalar(db, "select count(*) from " + q(db) + ".work_units where kind = 'subscription'") ==
        0);
}

TEST_CASE("subscription_refuses_hostile_subscription_and_group_names") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  for (const std::string& bad :
       std::vector<std::string>{"", "a b", "x'; drop table events; --", "../etc", "a/b", "_x",
                                std::string(64, 'a'), "caf\xc3\xa9", "tab\there", "\"q\""}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(subs.create(bad, {}), Error);
    CHECK_THROWS_AS(subs.get(bad), Error);
    SubscriptionOptions o;
    o.group = bad;
    CHECK_THROWS_AS(subs.create("ok", {}, o), Error);
  }
  CHECK(scalar(db, "select count(*) from " + q(db) + ".subscriptions") == 0);
  CHECK(scalar(db, "select count(*) from " + q(db) + ".subscription_groups") == 0);
  subs.create(std::string(63, 'a') + "", {});
  CHECK(subs.list().size() == 1);
}

TEST_CASE("group_max_in_flight_is_never_exceeded") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  append_pings(db.store(), 20);
  SubscriptionOptions o = manual();
  o.group = "workers";
  o.max_in_flight = 3;
  o.batch_size = 2;
  auto [ha, ra] = subs.subscribe("orders", {}, o);
  auto [hb, rb] = subs.subscribe("orders", {}, o);
  std::vector<std::int64_t> held;
  for (int i = 0; i < 10; ++i) {
    for (auto* rx : {&ra, &rb}) {
      if (auto e = rx->next(0ms)) held.push_back(e->global_seq);
    }
    CHECK(subs.group_status("orders", "workers").in_flight <= 3);
  }
  CHECK(held.size() == 3);
  CHECK(subs.group_status("orders", "workers").in_flight == 3);
  // Acknowledging frees room; the bound can be lifted.
  ha.ack(held[0]);
  hb.ack(held[0]);
  std::size_t more = 0;
  for (int i = 0; i < 4; ++i) {
    for (auto* rx : {&ra, &rb}) {
      if (rx->next(0ms)) ++more;
    }
    CHECK(subs.group_status("orders", "workers").in_flight <= 3);
  }
  CHECK(more == 1);
  subs.set_group_max_in_flight("orders", "workers", std::nullopt);
  CHECK_FALSE(subs.group_status("orders", "workers").max_in_flight);
  CHECK(drain(ra).size() + drain(rb).size() == 16);
}

// A member working through a fetched batch for longer than its lease TTL still heartbeats (on
// each next()), so another member never takes its events over.
TEST_CASE("a_member_with_a_slow_handler_is_not_taken_for_gone_while_it_works_through_a_batch") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  const auto p = append_pings(db.store(), 60);
  SubscriptionOptions o = manual();
  o.group = "g";
  o.lease_ttl = 1500ms;
  o.batch_size = 60;  // one fetch: all 60 in a's hands, ~3 s of work
  o.member_id = "a";
  auto [ha, ra] = subs.subscribe("s", {}, o);
  auto first = ra.next(0ms);
  REQUIRE(first);
  o.member_id = "b";
  auto [hb, rb] = subs.subscribe("s", {}, o);
  std::atomic<bool> done{false};
  std::atomic<int> taken_by_b{0};
  std::thread other([&] {
    while (!done) {
      if (auto e = rb.next(20ms)) {
        ++taken_by_b;
        hb.ack(e->global_seq);
      }
    }
  });
  std::vector<std::int64_t> handled;
  for (auto e = std::move(first); e; e = ra.next(0ms)) {
    std::this_thread::sleep_for(50ms);  // the handler's work, not a synchronisation
    ha.ack(e->global_seq);
    handled.push_back(e->global_seq);
  }
  done = true;
  other.join();
  CHECK(taken_by_b == 0);
  CHECK(handled == p);
}

TEST_CASE("group_of_three_loses_nothing_when_a_member_crashes_and_keeps_per_stream_order") {
  TestSchema db;
  auto& store = db.store();
  auto subs = store.subscriptions();
  // One stream per partition, so every member's partitions have events to deliver.
  std::vector<Uuid> streams(6);
  for (int found = 0; found < 6;) {
    const auto id = new_uuid();
    auto& slot = streams[static_cast<std::size_t>(subscriptions::partition_of(id, 6))];
    if (slot == Uuid{}) {
      slot = id;
      ++found;
    }
  }
  SubscriptionOptions o = manual();
  o.group = "g";
  o.partitions = 6;
  // Long enough that a member renews in time on a loaded machine (renewals ride on next()).
  o.lease_ttl = 2s;
  o.batch_size = 2;
  std::map<Uuid, std::vector<std::int64_t>> acked_order;  // stream -> stream_seqs, as acked
  std::map<std::int64_t, int> deliveries;
  std::set<std::int64_t> acked_by_c;
  std::size_t acked = 0;

  // C crashes: its handle and receiver stay alive but are never used again (like a killed
  // process: no release, no leave; its leases and heartbeat just expire).
  static std::vector<std::pair<SubscriptionHandle, SubscriptionReceiver>> abandoned;
  o.member_id = "c";
  abandoned.push_back(subs.subscribe("s", {}, o));
  auto& [hc, rc] = abandoned.back();
  o.member_id = "a";
  auto [ha, ra] = subs.subscribe("s", {}, o);
  o.member_id = "b";
  auto [hb, rb] = subs.subscribe("s", {}, o);
  // The three split the partitions (two each) before any event exists: what C takes before it
  // crashes does not depend on who joined first.
  await(
      [&] {
        ra.next(10ms);
        rb.next(10ms);
        rc.next(10ms);
      },
      [&] {
        std::map<std::string, int> held;
        for (const auto& p : subs.group_status("s", "g").partition_owners)
          if (p.owner) ++held[*p.owner];
        return held == std::map<std::string, int>{{"a", 2}, {"b", 2}, {"c", 2}};
      });
  for (int i = 0; i < 5; ++i) {
    for (const auto& s : streams) store.events().append_stream(s, Expected::any(), {Event("E", i)});
  }
  const auto take = [&](SubscriptionHandle& h, SubscriptionReceiver& r, bool ack) {
    auto e = r.next(10ms);
    if (!e) return false;
    ++deliveries[e->global_seq];
    if (ack) {
      h.ack(e->global_seq);
      acked_order[e->stream_id].push_back(e->stream_seq);
      ++acked;
    }
    return true;
  };
  bool crashed = false;
  int c_got = 0;
  await(
      [&] {
        take(ha, ra, true);
        take(hb, rb, true);
        if (!crashed) {
          auto e = rc.next(10ms);
          if (e) {
            ++deliveries[e->global_seq];
            if (++c_got <= 2) {
              hc.ack(e->global_seq);
              acked_by_c.insert(e->global_seq);
              acked_order[e->stream_id].push_back(e->stream_seq);
              ++acked;
            } else {
              crashed = true;  // this one is never acknowledged
            }
          }
        }
      },
      [&] { return crashed && acked == 30; });
  for (const auto& s : streams) {
    CAPTURE(to_string(s));
    CHECK(acked_order[s] == std::vector<std::int64_t>{1, 2, 3, 4, 5});
  }
  CHECK(acked_by_c.size() == 2);
  for (const auto seq : acked_by_c) CHECK(deliveries[seq] == 1);  // only unacked redelivered
  const auto status = subs.group_status("s", "g");
  CHECK(status.in_flight == 0);
  CHECK(status.members == std::vector<std::string>{"a", "b"});
  abandoned.clear();
}

TEST_CASE("group_partitions_rebalance_when_a_member_joins_and_when_one_leaves") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  SubscriptionOptions o = manual();
  o.group = "g";
  o.partitions = 4;
  o.lease_ttl = 600ms;
  o.member_id = "a";
  auto [ha, ra] = subs.subscribe("s", {}, o);
  const auto owners = [&] {
    std::map<std::string, int> n;
    for (const auto& p : subs.group_status("s", "g").partition_owners) {
      if (p.owner) ++n[*p.owner];
    }
    return n;
  };
  await([&] { ra.next(10ms); }, [&] { return owners()["a"] == 4; });
  o.member_id = "b";
  {
    auto [hb, rb] = subs.subscribe("s", {}, o);
    await([&] { ra.next(10ms), rb.next(10ms); },
          [&] {
            auto n = owners();
            return n["a"] == 2 && n["b"] == 2;
          },
          3s);  // within a few lease TTLs
    CHECK(subs.group_status("s", "g").members == std::vector<std::string>{"a", "b"});
    // Events still flow to both, each stream to one partition.
    const auto p = append_pings(db.store(), 8);
    std::set<std::int64_t> got;
    await(
        [&] {
          for (auto* rx : {&ra, &rb}) {
            if (auto e = rx->next(10ms)) got.insert(e->global_seq);
          }
        },
        [&] { return got.size() == p.size(); });
  }
  // b left (closed): a takes every partition again.
  await([&] { ra.next(10ms); }, [&] { return owners()["a"] == 4; }, 3s);
  CHECK(subs.group_status("s", "g").members == std::vector<std::string>{"a"});
}

TEST_CASE("group_repartition_loses_no_event") {
  TestSchema db;
  auto subs = db.store().subscriptions();
  SubscriptionOptions o = manual();
  o.group = "g";
  o.partitions = 2;
  const auto p = append_pings(db.store(), 10);
  std::set<std::int64_t> got;
  {
    auto [h, rx] = subs.subscribe("s", {}, o);
    for (int i = 0; i < 4; ++i) {
      auto e = rx.next(0ms);
      REQUIRE(e);
      h.ack(e->global_seq);
      got.insert(e->global_seq);
    }
  }
  subs.set_group_partitions("s", "g", 3);
  CHECK(subs.group_status("s", "g").partitions == 3);
  auto [h, rx] = subs.subscribe("s", {}, o);
  for (const auto& e : drain(rx)) {
    h.ack(e.global_seq);
    got.insert(e.global_seq);
  }
  CHECK(got == std::set<std::int64_t>(p.begin(), p.end()));
}
