#include "events/notifier.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <set>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {
std::vector<Event> one(const std::string& type, int n = 0) {
  return {Event(type, boost::json::object{{"n", n}})};
}
}  // namespace

TEST_CASE("append_stream_honours_every_expected_variant") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();

  CHECK_THROWS_AS(events.append_stream(id, Expected::stream_exists(), one("A")), VersionConflict);
  CHECK_THROWS_AS(events.append_stream(id, Expected::exact(1), one("A")), VersionConflict);
  auto r = events.append_stream(id, Expected::no_stream(), one("A"));
  CHECK(r.first_version == 1);
  CHECK(r.last_version == 1);
  CHECK_THROWS_AS(events.append_stream(id, Expected::no_stream(), one("B")), VersionConflict);
  r = events.append_stream(id, Expected::stream_exists(), one("B"));
  CHECK(r.last_version == 2);
  r = events.append_stream(id, Expected::exact(2), {Event("C", 1), Event("D", 2)});
  CHECK(r.first_version == 3);
  CHECK(r.last_version == 4);
  CHECK(r.last_global_seq == r.first_global_seq + 1);
  r = events.append_stream(id, Expected::any(), one("E"));
  CHECK(r.last_version == 5);

  try {
    events.append_stream(id, Expected::exact(3), one("F"));
    FAIL("expected a VersionConflict");
  } catch (const VersionConflict& e) {
    CHECK(e.code() == ErrorCode::kVersionConflict);
    CHECK(e.stream_id() == to_string(id));
    CHECK(e.expected() == "exact(3)");
    CHECK(e.actual() == 5);
    CHECK(std::string(e.what()).find(to_string(id)) != std::string::npos);
  }
  // A rejected append leaves nothing behind.
  CHECK(events.stream_version(id) == 5);
  CHECK(events.read_stream(id).size() == 5);
}

TEST_CASE("read_stream_returns_envelopes_with_all_metadata") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  const auto cause = new_uuid();
  const auto corr = new_uuid();
  AppendOptions opts;
  opts.headers = boost::json::object{{"req_id", "r-1"}};
  opts.causation_id = cause;
  opts.correlation_id = corr;
  events.append_with(id, Expected::any(),
                     {Event("A", boost::json::object{{"x", 1}}), Event("B", 2)}, opts);
  events.append_stream(id, Expected::any(), one("C", 3));

  const auto all = events.read_stream(id);
  REQUIRE(all.size() == 3);
  CHECK(all[0].type == "A");
  CHECK(all[0].body.at("x").as_int64() == 1);
  CHECK(all[0].headers.at("req_id").as_string() == "r-1");
  CHECK(all[0].causation_id == cause);
  CHECK(all[0].correlation_id == corr);
  CHECK(all[0].stream_id == id);
  CHECK(all[1].body.as_int64() == 2);
  CHECK(all[2].headers.as_object().empty());
  CHECK_FALSE(all[2].causation_id.has_value());
  CHECK(all[0].global_seq < all[1].global_seq);
  const auto age = std::chrono::system_clock::now() - all[0].created_at;
  CHECK(age < std::chrono::minutes(5));
  CHECK(age > -std::chrono::minutes(5));

  const auto tail = events.read_stream(id, {.from_version = 2, .limit = 1});
  REQUIRE(tail.size() == 1);
  CHECK(tail[0].stream_seq == 2);
  CHECK(events.read_stream(new_uuid()).empty());
  CHECK_FALSE(events.stream_version(new_uuid()).has_value());
}

TEST_CASE("append_builder_sends_headers_expected_and_events") {
  TestSchema db;
  const auto id = new_uuid();
  const auto r = db.store()
                     .events()
                     .builder(id)
                     .headers(boost::json::object{{"req_id", "abc"}})
                     .expected(Expected::no_stream())
                     .push(Event("Inc", 1))
                     .push(Event("Inc", 2))
                     .send();
  CHECK(r.last_version == 2);
  const auto all = db.store().events().read_stream(id);
  REQUIRE(all.size() == 2);
  CHECK(all[1].headers.at("req_id").as_string() == "abc");
  CHECK_THROWS_AS(
      db.store().events().builder(id).expected(Expected::no_stream()).push(Event("X", 0)).send(),
      VersionConflict);
}

TEST_CASE("concurrent_appends_to_one_stream_serialize_without_gaps") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 15;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        try {
          events.append_stream(id, Expected::any(), {Event("T", t), Event("T", i)});
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  const auto all = events.read_stream(id);
  REQUIRE(all.size() == kThreads * kPerThread * 2);
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].stream_seq == static_cast<std::int64_t>(i + 1));
    if (i > 0) CHECK(all[i].global_seq > all[i - 1].global_seq);
  }
}

TEST_CASE("concurrent_exact_appends_get_version_conflicts_never_raw_sql_errors") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  events.append_stream(id, Expected::no_stream(), one("Init"));
  constexpr int kThreads = 6;
  std::latch start(kThreads);
  std::atomic<int> ok{0}, conflicts{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < 20; ++i) {
        const auto v = *events.stream_version(id);
        try {
          events.append_stream(id, Expected::exact(v), one("Step"));
          ++ok;
        } catch (const VersionConflict&) {
          ++conflicts;
        } catch (...) {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(other == 0);
  CHECK(ok + conflicts == kThreads * 20);
  CHECK(conflicts > 0);
  CHECK(events.stream_version(id) == 1 + ok.load());
  const auto all = events.read_stream(id);
  for (std::size_t i = 0; i < all.size(); ++i)
    CHECK(all[i].stream_seq == static_cast<std::int64_t>(i + 1));
}

TEST_CASE("idempotent_retry_returns_the_original_result_and_writes_nothing") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  AppendOptions opts;
  opts.idempotency_key = "req-123";
  opts.headers = boost::json::object{{"h", 1}};
  const auto first =
      events.append_with(id, Expected::no_stream(), {Event("Placed", 42), Event("Paid", 1)}, opts);
  CHECK_FALSE(first.replayed);
  // The retry carries the same expectation, which would now fail: the key answers first.
  const auto again =
      events.append_with(id, Expected::no_stream(), {Event("Placed", 42), Event("Paid", 1)}, opts);
  CHECK(again.replayed);
  CHECK(again.first_version == first.first_version);
  CHECK(again.last_version == first.last_version);
  CHECK(again.first_global_seq == first.first_global_seq);
  CHECK(again.last_global_seq == first.last_global_seq);
  CHECK(events.read_stream(id).size() == 2);

  // Keys are per stream: the same key on another stream is a new append.
  const auto other = new_uuid();
  CHECK_FALSE(
      events.append_with(other, Expected::any(), {Event("Placed", 42), Event("Paid", 1)}, opts)
          .replayed);
  // A second key on the same stream is a second append.
  opts.idempotency_key = "req-124";
  CHECK(events.append_with(id, Expected::any(), {Event("Shipped", 1)}, opts).last_version == 3);
}

TEST_CASE("idempotency_key_reused_with_different_events_is_a_conflict") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  AppendOptions opts;
  opts.idempotency_key = "k";
  events.append_with(id, Expected::any(), one("A", 1), opts);
  try {
    events.append_with(id, Expected::any(), one("A", 2), opts);
    FAIL("expected IdempotencyConflict");
  } catch (const IdempotencyConflict& e) {
    CHECK(e.key() == "k");
    CHECK(e.stream_id() == to_string(id));
    CHECK(e.code() == ErrorCode::kIdempotencyConflict);
  }
  CHECK(events.read_stream(id).size() == 1);
  // A rejected append does not burn its key.
  AppendOptions fresh;
  fresh.idempotency_key = "k2";
  CHECK_THROWS_AS(events.append_with(id, Expected::exact(7), one("B"), fresh), VersionConflict);
  CHECK_FALSE(events.append_with(id, Expected::exact(1), one("B"), fresh).replayed);
}

TEST_CASE("concurrent_identical_idempotent_appends_write_once") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  constexpr int kThreads = 6;
  std::latch start(kThreads);
  std::atomic<int> replays{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      AppendOptions opts;
      opts.idempotency_key = "same";
      start.arrive_and_wait();
      try {
        if (events.append_with(id, Expected::any(), one("Once", 7), opts).replayed) ++replays;
      } catch (...) {
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(errors == 0);
  CHECK(replays == kThreads - 1);
  CHECK(events.read_stream(id).size() == 1);
}

TEST_CASE("advisory_lock_appends_behave_like_plain_appends") {
  TestSchema db;
  auto locked = db.store().events().with_advisory_locks();
  const auto id = new_uuid();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) locked.append_stream(id, Expected::any(), one("L"));
    });
  }
  for (auto& th : threads) th.join();
  CHECK(locked.stream_version(id) == 40);
}

TEST_CASE("stream_alias_resolution_is_stable_and_race_safe") {
  TestSchema db;
  auto& store = db.store();
  const auto a = store.resolve_stream_alias("orders:42");
  CHECK(store.resolve_stream_alias("orders:42") == a);
  CHECK(store.resolve_stream_alias("orders:43") != a);

  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<Uuid> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      seen[t] = store.resolve_stream_alias("race:1");
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& id : seen) CHECK(id == seen[0]);

  // Hostile aliases are data, never SQL.
  const auto hostile = store.resolve_stream_alias("x'); drop table events; --");
  CHECK(store.resolve_stream_alias("x'); drop table events; --") == hostile);
  store.events().append_stream(hostile, Expected::any(), one("Still"));
  CHECK(store.events().read_stream(hostile).size() == 1);
  CHECK_THROWS_AS(store.resolve_stream_alias(""), Error);
  CHECK_THROWS_AS(store.resolve_stream_alias("bad\nalias"), Error);
}

TEST_CASE("append_rejects_bad_input_with_clear_errors") {
  TestSchema db;
  auto events = db.store().events();
  const auto id = new_uuid();
  auto code_of = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kInternal;
  };
  CHECK(code_of([&] { events.append_stream(id, Expected::any(), {}); }) ==
        ErrorCode::kInvalidArgument);
  CHECK(code_of([&] { events.append_stream(id, Expected::any(), {Event("", 1)}); }) ==
        ErrorCode::kInvalidArgument);
  AppendOptions bad_headers;
  bad_headers.headers = boost::json::array{1, 2};
  CHECK(code_of([&] { events.append_with(id, Expected::any(), one("A"), bad_headers); }) ==
        ErrorCode::kInvalidArgument);
  // Hostile type names and bodies are stored verbatim.
  const std::string hostile = "\"; delete from events; --";
  events.append_stream(id, Expected::any(),
                       {Event(hostile, boost::json::object{{"'", "\\\u0001"}})});
  const auto back = events.read_stream(id);
  REQUIRE(back.size() == 1);
  CHECK(back[0].type == hostile);
  CHECK(back[0].body.at("'").as_string() == "\\\u0001");
  CHECK_THROWS_AS(parse_json("{\"a\": "), Error);
}

namespace {

// Collects the payloads of one channel's notifications on a direct connection.
class Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection& conn, const std::string& channel)
      : pqxx::notification_receiver(conn, channel), conn_(conn) {}
  void operator()(const std::string& payload, int) override { payloads_.push_back(payload); }

  // Waits (up to 30 s, however busy the machine) for the next notification; its payload.
  std::string next() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (payloads_.empty() && std::chrono::steady_clock::now() < deadline) {
      conn_.await_notification(1, 0);
    }
    REQUIRE_MESSAGE(!payloads_.empty(), "no notification within 30 s");
    auto p = payloads_.front();
    payloads_.erase(payloads_.begin());
    return p;
  }

 private:
  pqxx::connection& conn_;
  std::vector<std::string> payloads_;
};

struct Tally {
  std::int64_t v = 0;
  void apply(const EventEnvelope& e) { v = e.stream_seq; }
  std::int64_t version() const { return v; }
};

}  // namespace

TEST_CASE("every_committing_append_path_notifies_its_schema_after_the_commit") {
  TestSchema db;
  const std::string channel = "rf_notify_" + testing::random_suffix();
  auto listen_conn = db.raw();
  Listener listener(listen_conn, channel);
  const auto store = db.builder().notify_channel(channel).build();
  const auto id = new_uuid();

  // Each wakeup comes after the commit: the event is visible when the notification arrives.
  auto visible = [&](std::int64_t version) { return store.events().stream_version(id) == version; };
  store.events().append_stream(id, Expected::no_stream(), one("A"));
  CHECK(listener.next() == db.name());
  CHECK(visible(1));

  auto session = store.session();
  session.enqueue_event(id, Expected::exact(1), Event("B", boost::json::object{}));
  session.save_changes();
  CHECK(listener.next() == db.name());
  CHECK(visible(2));

  AggregateRepository<Tally>(store).commit(id, Expected::exact(2), one("C"));
  CHECK(listener.next() == db.name());
  CHECK(visible(3));

  // A store dropped right after its append still sends the notification (the CLI's case).
  db.builder().notify_channel(channel).build().events().append_stream(id, Expected::exact(3),
                                                                      one("D"));
  CHECK(listener.next() == db.name());
  CHECK(visible(4));
}

TEST_CASE("the_notifier_lets_one_append_per_interval_notify_itself_and_coalesces_the_rest") {
  TestSchema db;
  const std::string channel = "rf_notify_" + testing::random_suffix();
  auto listen_conn = db.raw();
  Listener listener(listen_conn, channel);
  const auto pool = std::make_shared<db::Pool>(db::ConnInfo::parse(testing::cluster_url()), 2,
                                               std::chrono::seconds(10), nullptr);
  {
    // One transaction at a time holds the claim, whatever the interval.
    events::Notifier notifier(pool, channel, {}, std::chrono::microseconds(0));
    CHECK(notifier.claim_in_transaction());
    CHECK_FALSE(notifier.claim_in_transaction());
    notifier.release_in_transaction();
    CHECK(notifier.claim_in_transaction());
    notifier.release_in_transaction();
  }
  {
    // An hour's interval: nothing is sent before the destructor's final flush.
    events::Notifier notifier(pool, channel, {}, std::chrono::hours(1));
    CHECK(notifier.claim_in_transaction());
    notifier.release_in_transaction();
    CHECK_FALSE(notifier.claim_in_transaction());  // within the interval of the first
    notifier.poke("schema_b");
    notifier.poke("schema_a");
    notifier.poke("schema_b");
  }
  // One notification per schema, however often it was poked, sent at the end at the latest.
  std::multiset<std::string> got{listener.next(), listener.next()};
  CHECK(got == std::multiset<std::string>{"schema_a", "schema_b"});
  // And nothing more: a notification sent now comes next, not a third from the notifier.
  {
    pqxx::nontransaction txn(listen_conn);
    txn.exec("select pg_notify(" + txn.quote(channel) + ", 'marker')");
  }
  CHECK(listener.next() == "marker");
}
