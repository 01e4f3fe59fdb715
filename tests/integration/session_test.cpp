// DocumentSession: identity map, staged work, one transaction, OCC on loaded documents.
#include "support/test_db.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace session_test {

struct Account {
  static constexpr std::string_view kCollection = "accounts";
  std::string owner;
  std::int64_t balance = 0;
};
BOOST_DESCRIBE_STRUCT(Account, (), (owner, balance))

struct Visits {
  std::int64_t total = 0;
  std::int64_t v = 0;
  void apply(const EventEnvelope& e) {
    if (e.type == "Visited") ++total;
    v = e.stream_seq;
  }
  std::int64_t version() const { return v; }
};
BOOST_DESCRIBE_STRUCT(Visits, (), (total, v))

std::vector<Event> visited(int n) {
  std::vector<Event> out;
  for (int i = 0; i < n; ++i) out.emplace_back("Visited", boost::json::object{});
  return out;
}

}  // namespace session_test

using namespace session_test;

TEST_CASE("session_load_reads_each_document_once_through_the_identity_map") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  docs.put(id, Account{"ada", 10});
  auto session = db.store().session();
  CHECK(session.load<Account>(id)->balance == 10);
  docs.put(id, Account{"ada", 99});                 // another writer
  CHECK(session.load<Account>(id)->balance == 10);  // the session's view is stable
  CHECK(session.tracked_version("accounts", id) == 1);
  // Staged changes are what the session sees.
  session.store(id, Account{"ada", 11});
  CHECK(session.load<Account>(id)->balance == 11);
  session.remove<Account>(id);
  CHECK_FALSE(session.load<Account>(id).has_value());
  CHECK(session.pending_documents() == 1);
}

TEST_CASE("save_changes_applies_documents_events_and_snapshots_in_one_transaction") {
  TestSchema db;
  const auto store = db.store();
  const AggregateRepository<Visits> repo(store);
  const auto id = new_uuid();
  auto session = store.session();
  CHECK_FALSE(session.load<Account>(id).has_value());
  session.store(id, Account{"ada", 5});
  session.enqueue_event(id, Expected::no_stream(), Event("AccountOpened", Account{"ada", 5}));
  auto aggregates = session.aggregates(repo);
  aggregates.commit(id, Expected::exact(1), visited(1));
  CHECK(session.pending_appends() == 2);
  const auto appends = session.save_changes();
  REQUIRE(appends.size() == 2);
  CHECK(appends[1].last_version == 2);
  CHECK_FALSE(session.has_changes());
  CHECK(store.docs().get<Account>(id)->version == 1);
  CHECK(session.tracked_version("accounts", id) == 1);

  // Second unit of work: edit the loaded document, commit with a snapshot every 2 events.
  auto account = *session.load<Account>(id);
  account.balance += 10;
  session.store(id, account);
  const auto state = repo.load(id);
  CHECK(state.version() == 2);
  session.aggregates(repo).commit_and_snapshot(id, state, visited(2), 2);
  session.save_changes();
  CHECK(store.docs().get<Account>(id)->doc.balance == 15);
  CHECK(store.docs().get<Account>(id)->version == 2);
  CHECK(session.tracked_version("accounts", id) == 2);
  CHECK(repo.load_with_snapshot(id).total == 3);
  auto conn = db.raw();
  const auto snap = pqxx::nontransaction(conn).exec_params(
      "select version, body::text from \"" + db.name() + "\".snapshots where stream_id = $1::uuid",
      to_string(id));
  REQUIRE(snap.size() == 1);
  CHECK(snap[0][0].as<int>() == 4);
  CHECK(parse_json(snap[0][1].c_str()) == parse_json(R"({"total":3,"v":4})"));
}

TEST_CASE("a_failing_event_append_rolls_back_the_document_writes_and_keeps_the_staged_work") {
  TestSchema db;
  const auto store = db.store();
  const auto id = new_uuid(), other = new_uuid();
  auto session = store.session();
  session.store(id, Account{"ada", 1});
  session.store(other, Account{"bob", 2});
  session.enqueue_event(id, Expected::exact(1), Event("Deposited", boost::json::object{}));
  CHECK_THROWS_AS(session.save_changes(), VersionConflict);
  CHECK_FALSE(store.docs().get<Account>(id).has_value());
  CHECK_FALSE(store.docs().get<Account>(other).has_value());
  CHECK_FALSE(store.events().stream_version(id).has_value());
  CHECK(session.pending_documents() == 2);
  CHECK(session.pending_appends() == 1);
  // Once the stream is where the staged append expects it, the same work saves.
  store.events().append_stream(id, Expected::no_stream(), {Event("Opened", Json(nullptr))});
  session.save_changes();
  CHECK(store.docs().get<Account>(other)->doc.owner == "bob");
  CHECK(store.events().stream_version(id) == 2);
}

TEST_CASE("save_changes_rejects_loaded_documents_changed_by_someone_else") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid(), fresh = new_uuid();
  docs.put(id, Account{"ada", 10});
  auto session = db.store().session();
  auto acc = *session.load<Account>(id);
  acc.balance = 20;
  session.store(id, acc);
  docs.put(id, Account{"ada", 30});  // a concurrent writer gets there first
  try {
    session.save_changes();
    FAIL("expected a DocVersionConflict");
  } catch (const DocVersionConflict& e) {
    CHECK(e.expected() == 1);
    CHECK(e.actual() == 2);
  }
  CHECK(docs.get<Account>(id)->doc.balance == 30);
  CHECK(session.pending_documents() == 1);

  // Loaded as absent, then created elsewhere: the session's insert conflicts too.
  auto second = db.store().session();
  CHECK_FALSE(second.load<Account>(fresh).has_value());
  second.store(fresh, Account{"eve", 1});
  docs.put(fresh, Account{"mallory", 1});
  CHECK_THROWS_AS(second.save_changes(), DocVersionConflict);
  CHECK(docs.get<Account>(fresh)->doc.owner == "mallory");

  // Removing a loaded document is checked the same way.
  auto third = db.store().session();
  third.load<Account>(id);
  third.remove<Account>(id);
  docs.put(id, Account{"ada", 31});
  CHECK_THROWS_AS(third.save_changes(), DocVersionConflict);
  third.discard_changes();
  CHECK_FALSE(third.has_changes());
  // The identity map still holds version 2, so a new attempt in this session conflicts too.
  third.store(id, Account{"ada", 40});
  CHECK_THROWS_AS(third.save_changes(), DocVersionConflict);
  // Stored without loading: a plain upsert.
  auto fourth = db.store().session();
  fourth.store(id, Account{"ada", 40});
  fourth.save_changes();
  CHECK(docs.get<Account>(id)->doc.balance == 40);
}

TEST_CASE("session_appends_carry_the_store_session_defaults") {
  TestSchema db;
  const auto cause = new_uuid(), corr = new_uuid();
  AppendOptions defaults;
  defaults.headers = boost::json::object{{"source", "api"}};
  defaults.causation_id = cause;
  defaults.correlation_id = corr;
  const auto store = db.builder().session_defaults(defaults).session_advisory_locks(true).build();
  const auto id = new_uuid();
  auto session = store.session();
  session.enqueue_event(id, Expected::any(), Event("Visited", boost::json::object{}));
  session.aggregates(AggregateRepository<Visits>(store)).commit(id, Expected::exact(1), visited(1));
  session.save_changes();
  const auto events = store.events().read_stream(id);
  REQUIRE(events.size() == 2);
  for (const auto& e : events) {
    CHECK(e.headers == parse_json(R"({"source":"api"})"));
    CHECK(e.causation_id == cause);
    CHECK(e.correlation_id == corr);
  }
  // Plain event store appends do not get session defaults.
  store.events().append_stream(id, Expected::any(), visited(1));
  CHECK(store.events().read_stream(id).back().headers.as_object().empty());
  AppendOptions keyed;
  keyed.idempotency_key = "k";
  CHECK_THROWS_AS(db.builder().session_defaults(keyed).build(), Error);
}
