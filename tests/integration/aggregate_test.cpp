// AggregateRepository: folding, validation on every commit path, snapshots from real state.
#include "support/test_db.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

#include <chrono>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace aggregate_test {

struct Counter {
  std::int64_t n = 0;
  std::int64_t v = 0;
  void apply(const EventEnvelope& e) {
    const auto by =
        e.body.as_object().contains("by") ? e.body.at("by").to_number<std::int64_t>() : 1;
    if (e.type == "Inc") n += by;
    if (e.type == "Dec") n -= by;
    v = e.stream_seq;
  }
  std::int64_t version() const { return v; }
};
BOOST_DESCRIBE_STRUCT(Counter, (), (n, v))

Event inc(std::int64_t by = 1) {
  return Event("Inc", boost::json::object{{"by", by}});
}
Event dec(std::int64_t by = 1) {
  return Event("Dec", boost::json::object{{"by", by}});
}

std::optional<Json> snapshot_body(TestSchema& db, const Uuid& id) {
  auto conn = db.raw();
  pqxx::nontransaction txn(conn);
  const auto r = txn.exec_params(
      "select body::text from \"" + db.name() + "\".snapshots where stream_id = $1::uuid",
      to_string(id));
  if (r.empty()) return std::nullopt;
  return parse_json(r[0][0].c_str());
}

}  // namespace aggregate_test

using namespace aggregate_test;

static_assert(Aggregate<Counter>);
static_assert(SnapshotAggregate<Counter>);

TEST_CASE("load_folds_every_event_of_the_stream") {
  TestSchema db;
  const AggregateRepository<Counter> repo(db.store());
  const auto id = new_uuid();
  CHECK(repo.load(id).n == 0);
  CHECK(repo.load(id).version() == 0);
  repo.commit(id, Expected::no_stream(), {inc(5), dec(2)});
  repo.commit(id, Expected::exact(2), {inc()});
  const auto c = repo.load(id);
  CHECK(c.n == 4);
  CHECK(c.version() == 3);
  CHECK_THROWS_AS(repo.commit(id, Expected::exact(2), {inc()}), VersionConflict);
}

TEST_CASE("the_validator_judges_the_state_after_the_new_events_on_every_commit_path") {
  TestSchema db;
  const auto repo = AggregateRepository<Counter>(db.store())
                        .with_validator([](const Counter& c) -> std::optional<std::string> {
                          if (c.n < 0)
                            return "counter would be negative (" + std::to_string(c.n) + ")";
                          return std::nullopt;
                        });
  const auto id = new_uuid();
  repo.commit(id, Expected::any(), {inc(2)});
  try {
    repo.commit(id, Expected::any(), {dec(3)});
    FAIL("expected a rejection");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
    CHECK(std::string(e.what()).find("negative (-1)") != std::string::npos);
  }
  CHECK(db.store().events().stream_version(id) == 1);  // nothing appended
  CHECK_THROWS_AS(repo.commit_and_snapshot(id, repo.load(id), {dec(3)}, 1), Error);
  CHECK(db.store().events().stream_version(id) == 1);
  CHECK_FALSE(snapshot_body(db, id).has_value());

  auto session = db.store().session();
  session.store("notes", id, boost::json::object{{"k", 1}});
  session.aggregates(repo).commit(id, Expected::any(), {dec(5)});
  CHECK_THROWS_AS(session.save_changes(), Error);
  CHECK_FALSE(db.store().docs().get("notes", id).has_value());
  CHECK(db.store().events().stream_version(id) == 1);
  session.discard_changes();
  session.aggregates(repo).commit(id, Expected::any(), {dec(2)});
  session.save_changes();
  CHECK(repo.load(id).n == 0);
}

TEST_CASE("commit_and_snapshot_writes_the_real_state_every_n_events") {
  TestSchema db;
  const AggregateRepository<Counter> repo(db.store());
  const auto id = new_uuid();
  Counter c = repo.load(id);
  repo.commit_and_snapshot(id, c, {inc(10)}, 3);
  CHECK_FALSE(snapshot_body(db, id).has_value());  // 1 event since none: not due
  c = repo.load(id);
  repo.commit_and_snapshot(id, c, {inc(), inc()}, 3);
  auto body = snapshot_body(db, id);
  REQUIRE(body.has_value());
  CHECK(*body == parse_json(R"({"n":12,"v":3})"));
  // A default-constructed aggregate is not "the state": it fails the expectation.
  CHECK_THROWS_AS(repo.commit_and_snapshot(id, Counter{}, {inc()}, 1), VersionConflict);
  c = repo.load(id);
  repo.commit_and_snapshot(id, c, {inc(), inc()}, 3);
  CHECK(*snapshot_body(db, id) == parse_json(R"({"n":12,"v":3})"));  // 2 since: not due
  c = repo.load(id);
  repo.commit_and_snapshot(id, c, {dec(4)}, 3);
  CHECK(*snapshot_body(db, id) == parse_json(R"({"n":10,"v":6})"));
  // every_n == 0 never snapshots (and does not crash).
  c = repo.load(id);
  repo.commit_and_snapshot(id, c, {inc(), inc(), inc(), inc()}, 0);
  CHECK(*snapshot_body(db, id) == parse_json(R"({"n":10,"v":6})"));
  CHECK(repo.load_with_snapshot(id).n == repo.load(id).n);
  CHECK(repo.load_with_snapshot(id).version() == 10);
}

TEST_CASE("load_with_snapshot_reads_the_snapshot_and_only_the_events_after_it") {
  TestSchema db;
  const AggregateRepository<Counter> repo(db.store());
  const auto id = new_uuid();
  CHECK(repo.load_with_snapshot(id).version() == 0);
  repo.commit(id, Expected::any(), {inc(), inc(), inc()});
  CHECK(repo.load_with_snapshot(id).n == 3);  // no snapshot: full fold
  repo.commit_and_snapshot(id, repo.load(id), {inc()}, 1);
  repo.commit(id, Expected::any(), {inc(100)});
  // Prove the prefix is not re-read: change the snapshot behind the repository's back.
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec_params(
      "update \"" + db.name() +
          "\".snapshots set body = '{\"n\": 1000, \"v\": 4}'::jsonb "
          "where stream_id = $1::uuid",
      to_string(id));
  const auto fast = repo.load_with_snapshot(id);
  CHECK(fast.n == 1100);
  CHECK(fast.version() == 5);
  CHECK(repo.load(id).n == 104);
}

// Speed is measured in bench/ (bench_docs: snapshot vs full-fold loads); here the behaviour that
// makes it fast: a snapshot load reads only the events after the snapshot. The events before it
// are made unreadable for Counter, so a load that folded them would count differently.
TEST_CASE("a_snapshot_load_of_a_long_stream_reads_only_the_events_after_the_snapshot") {
  TestSchema db;
  const AggregateRepository<Counter> repo(db.store());
  const auto id = new_uuid();
  std::vector<Event> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back(inc());
  for (int k = 0; k < 10; ++k) repo.commit(id, Expected::any(), batch);
  repo.commit_and_snapshot(id, repo.load(id), {inc(), inc()}, 100);
  repo.commit(id, Expected::any(), {inc(), inc(), inc()});
  CHECK(repo.load(id).n == 10005);
  CHECK(repo.load_with_snapshot(id).n == 10005);
  auto conn = db.raw();
  pqxx::nontransaction(conn).exec_params(
      "update \"" + db.name() +
          "\".events set event_type = 'Ignored' where stream_id = $1::uuid and stream_seq <= 10000",
      rillflow::to_string(id));
  CHECK(repo.load(id).n == 5);                    // a full fold sees the changed events
  CHECK(repo.load_with_snapshot(id).n == 10005);  // the snapshot load never read them
}
