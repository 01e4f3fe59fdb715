// The global feed must never skip a committed event, whatever the commit order
// (docs/ordering.md). These tests hold transactions open on raw connections to force the orders
// that break a naive `global_seq > checkpoint` reader.

#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {

// Reads until caught up; returns the events and leaves `pos` after them.
std::vector<EventEnvelope> drain(const EventStore& events, FeedPosition& pos,
                                 std::size_t page = 100) {
  std::vector<EventEnvelope> out;
  while (true) {
    auto batch = events.read_feed(pos, page);
    pos = batch.next;
    for (auto& e : batch.events) out.push_back(std::move(e));
    if (batch.caught_up) return out;
  }
}

// Appends one event inside an open transaction on `conn`, the way any appender would.
std::int64_t append_raw(pqxx::work& txn, const std::string& schema, const Uuid& stream) {
  const std::string s = "\"" + schema + "\"";
  txn.exec_params("insert into " + s + ".streams (stream_id, version) values ($1::uuid, 1)",
                  to_string(stream));
  return txn
      .exec_params1("insert into " + s +
                        ".events (stream_id, stream_seq, event_type, body) values ($1::uuid, 1, "
                        "'Held', '{}') returning global_seq",
                    to_string(stream))[0]
      .as<std::int64_t>();
}

}  // namespace

TEST_CASE("feed_delivers_a_late_committing_lower_sequence_event_after_it_commits") {
  TestSchema db;
  auto events = db.store().events();
  FeedPosition pos;
  CHECK(drain(events, pos).empty());

  auto conn = db.raw();
  pqxx::work held(conn);
  const auto held_seq = append_raw(held, db.name(), new_uuid());

  // Later appends commit while the lower global_seq is still in flight.
  const auto later = events.append_stream(new_uuid(), Expected::any(), {Event("Later", 1)});
  CHECK(later.first_global_seq > held_seq);

  // R3: the open appending transaction delays only its own event.
  auto first = drain(events, pos);
  REQUIRE(first.size() == 1);
  CHECK(first[0].global_seq == later.first_global_seq);

  held.commit();
  const auto newer = events.append_stream(new_uuid(), Expected::any(), {Event("Newer", 2)});
  // R1: the lower sequence number is delivered now, not skipped, before the newer event of the
  // same batch.
  auto second = drain(events, pos);
  REQUIRE(second.size() == 2);
  CHECK(second[0].global_seq == held_seq);
  CHECK(second[0].type == "Held");
  CHECK(second[1].global_seq == newer.first_global_seq);
  CHECK(drain(events, pos).empty());

  // Each tick stores its batch's lowest global_seq, where a read of the batch starts: tick 2's is
  // the held event (from tick 1's xip), below tick 1's event. Were the xip half left out, it
  // would be the newer event's and the read would skip the held one.
  const auto ticks = pqxx::nontransaction(conn).exec("select first_seq from \"" + db.name() +
                                                     "\".ticks order by tick_id");
  REQUIRE(ticks.size() == 3);
  CHECK(ticks[0][0].is_null());  // tick 0 ends no batch
  CHECK(ticks[1][0].as<std::int64_t>() == later.first_global_seq);
  CHECK(ticks[2][0].as<std::int64_t>() == held_seq);
}

TEST_CASE("feed_is_not_held_back_by_an_unrelated_open_transaction") {
  TestSchema db;
  auto events = db.store().events();
  auto conn = db.raw();
  pqxx::work unrelated(conn);
  // A transaction with an xid (it wrote something) that appends no event: a report, a migration.
  unrelated.exec("create temporary table scratch (x int)");
  unrelated.exec("insert into scratch values (1)");
  unrelated.exec("select pg_current_xact_id()");

  FeedPosition pos;
  events.append_stream(new_uuid(), Expected::any(), {Event("A", 1), Event("B", 2)});
  const auto got = drain(events, pos);
  CHECK(got.size() == 2);
  unrelated.abort();
}

TEST_CASE("feed_skips_nothing_when_a_held_transaction_aborts_or_many_commit_out_of_order") {
  TestSchema db;
  auto events = db.store().events();
  auto c1 = db.raw();
  auto c2 = db.raw();
  pqxx::work t1(c1);
  pqxx::work t2(c2);
  const auto s1 = append_raw(t1, db.name(), new_uuid());
  const auto s2 = append_raw(t2, db.name(), new_uuid());
  FeedPosition pos;
  events.append_stream(new_uuid(), Expected::any(), {Event("C", 3)});
  CHECK(drain(events, pos).size() == 1);
  t2.commit();  // commits in the opposite order of its sequence number draw
  auto got = drain(events, pos);
  REQUIRE(got.size() == 1);
  CHECK(got[0].global_seq == s2);
  t1.abort();
  CHECK(drain(events, pos).empty());
  CHECK(s1 < s2);
}

TEST_CASE("feed_pages_through_large_batches_in_global_order_without_duplicates") {
  TestSchema db;
  auto events = db.store().events();
  std::vector<Event> batch;
  for (int i = 0; i < 50; ++i) batch.emplace_back("E", i);
  for (int i = 0; i < 10; ++i) events.append_stream(new_uuid(), Expected::any(), batch);
  FeedPosition pos;
  const auto got = drain(events, pos, 7);
  REQUIRE(got.size() == 500);
  for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i].global_seq > got[i - 1].global_seq);
  CHECK(events.head() == got.back().global_seq);
  // A persisted position resumes exactly where it stopped.
  FeedPosition again;
  auto part = events.read_feed(again, 123);
  CHECK(part.events.size() == 123);
  CHECK_FALSE(part.caught_up);
  auto rest = drain(events, part.next, 1000);
  CHECK(rest.size() == 377);
  CHECK(rest.front().global_seq == part.events.back().global_seq + 1);
}

TEST_CASE("feed_rejects_positions_that_do_not_exist") {
  TestSchema db;
  auto events = db.store().events();
  events.append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
  CHECK_THROWS_AS(events.read_feed(FeedPosition{5, 9, 0}, 10), Error);
  CHECK_THROWS_AS(events.read_feed(FeedPosition{3, 2, 0}, 10), Error);
  CHECK_THROWS_AS(events.read_feed(FeedPosition{}, 0), Error);
}

TEST_CASE("feed_under_concurrent_appenders_delivers_every_event_once_in_stream_order") {
  TestSchema db;
  auto events = db.store().events();
  const auto seed = std::random_device{}();
  std::cout << "feed concurrency seed " << seed << "\n";
  std::atomic<bool> done{false};
  constexpr int kWriters = 4;
  constexpr int kAppends = 60;
  std::vector<Uuid> streams;
  for (int i = 0; i < 6; ++i) streams.push_back(new_uuid());
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 rng(seed + w);
      for (int i = 0; i < kAppends; ++i) {
        const auto& s = streams[rng() % streams.size()];
        std::vector<Event> batch;
        for (unsigned j = 0; j <= rng() % 3; ++j) batch.emplace_back("W", w * 1000 + i);
        events.append_stream(s, Expected::any(), batch);
      }
    });
  }
  std::vector<EventEnvelope> seen;
  FeedPosition pos;
  std::thread reader([&] {
    while (!done) {
      auto batch = events.read_feed(pos, 17);
      pos = batch.next;
      for (auto& e : batch.events) seen.push_back(std::move(e));
    }
  });
  for (auto& t : writers) t.join();
  done = true;
  reader.join();
  for (auto& e : drain(events, pos)) seen.push_back(std::move(e));

  std::set<std::int64_t> unique;
  std::map<Uuid, std::int64_t> last_seq;
  for (const auto& e : seen) {
    CHECK(unique.insert(e.global_seq).second);
    auto& last = last_seq[e.stream_id];
    CHECK(e.stream_seq == last + 1);  // in order within the stream, none missing
    last = e.stream_seq;
  }
  std::int64_t total = 0;
  for (const auto& s : streams) total += events.stream_version(s).value_or(0);
  CHECK(static_cast<std::int64_t>(seen.size()) == total);
}

TEST_CASE("ranges_with_ticks_lacking_first_seq_or_missing_are_read_from_the_start_of_the_table") {
  TestSchema db;
  auto events = db.store().events();
  FeedPosition pos;
  for (int round = 0; round < 3; ++round) {
    events.append_stream(new_uuid(), Expected::any(), {Event("E", round), Event("E", round)});
    CHECK(drain(events, pos).size() == 2);
  }
  auto conn = db.raw();
  // As a store migrated from an older version has them: the middle tick knows nothing.
  pqxx::nontransaction(conn).exec("update \"" + db.name() +
                                  "\".ticks set first_seq = null where tick_id = 2");
  FeedPosition from_start;
  auto all = drain(events, from_start, 4);
  REQUIRE(all.size() == 6);
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i].global_seq > all[i - 1].global_seq);
  FeedPosition after_first{1, 0, 0};
  CHECK(drain(events, after_first).size() == 4);
  // A hole (pruning goes by created_at too, so it can take a tick from the middle): the range's
  // ticks are not all there and the read again starts from the beginning.
  pqxx::nontransaction(conn).exec("delete from \"" + db.name() + "\".ticks where tick_id = 2");
  FeedPosition across_hole{1, 0, 0};
  CHECK(drain(events, across_hole).size() == 4);
}
