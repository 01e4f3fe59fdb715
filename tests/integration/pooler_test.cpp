// Rillflow behind a transaction-pooling PgBouncer: prepared statements, pooler detection, and the
// automatic fallback. The whole integration binary also runs through a PgBouncer as the ctest
// integration_pgbouncer (RILLFLOW_TEST_POOLER=pgbouncer).
#include "support/pgbouncer.hpp"
#include "support/test_db.hpp"

#include "db/pool.hpp"
#include "db/sql.hpp"
#include "store_state.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

#include <mutex>
#include <vector>

using namespace rillflow;
using rillflow::testing::PgBouncer;
using rillflow::testing::TestSchema;

namespace pooler_test {

struct Note {
  static constexpr std::string_view kCollection = "notes";
  int total = 0;
};
BOOST_DESCRIBE_STRUCT(Note, (), (total))

struct NotesOfTotal : CompiledQuery<Note> {
  explicit NotesOfTotal(int t) : total(t) {}
  int total;
  void configure(DocumentQueryContext& q) const override {
    q.filter(Predicate::eq("total", total));
  }
};

}  // namespace pooler_test

namespace {

using pooler_test::Note;

struct Messages {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view m) {
      std::lock_guard lock(mutex);
      lines.emplace_back(m);
    };
  }
  std::size_t count(std::string_view part) {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const auto& l : lines) n += l.find(part) != std::string::npos ? 1 : 0;
    return n;
  }
};

// Appends, stream reads, feed reads, documents, compiled queries and aliases: every statement
// kind core sends.
void exercise(Store& store) {
  const auto id = new_uuid();
  store.events().append_stream(id, Expected::no_stream(), {Event("Opened", 1), Event("Paid", 2)});
  store.events().append_stream(id, Expected::exact(2), {Event("Shipped", 3)});
  CHECK(store.events().read_stream(id).size() == 3);
  const auto batch = store.events().read_feed(FeedPosition{}, 100);
  CHECK(batch.events.size() >= 3);
  auto docs = store.docs();
  const auto doc = new_uuid();
  docs.put(doc, Note{7});
  CHECK(docs.get<Note>(doc).has_value());
  CHECK(docs.query<Note>().filter(Predicate::eq("total", 7)).fetch_all().size() >= 1);
  CHECK(docs.execute_compiled(pooler_test::NotesOfTotal(7)).size() >= 1);
  CHECK(store.resolve_stream_alias("orders:1") == store.resolve_stream_alias("orders:1"));
}

std::int64_t named_statements(Store& store) {
  auto& pool = detail::StoreAccess::state(store)->connections();
  return db::with_connection(pool, [](db::Connection& conn) {
    pqxx::nontransaction txn(conn.raw());
    return txn.exec("select count(*) from pg_prepared_statements")[0][0].as<std::int64_t>();
  });
}

}  // namespace

TEST_CASE("a_direct_store_prepares_statements_and_sees_no_pooler") {
  TestSchema db;
  auto store = Store::builder(testing::direct_url()).schema(db.name()).max_connections(1).build();
  CHECK_FALSE(store.behind_pooler());
  CHECK(store.prepares_statements());
  exercise(store);
  CHECK(named_statements(store) > 0);
}

TEST_CASE("prepared_statements_off_sends_every_statement_unnamed") {
  TestSchema db;
  auto store = Store::builder(testing::direct_url())
                   .schema(db.name())
                   .max_connections(1)
                   .prepared_statements(PreparedStatements::kOff)
                   .build();
  CHECK_FALSE(store.prepares_statements());
  exercise(store);
  CHECK(named_statements(store) == 0);  // one connection: the session every call above used
}

TEST_CASE("auto_turns_prepared_statements_off_behind_pgbouncer_and_says_so_once") {
  TestSchema db;
  auto bouncer = PgBouncer::start(testing::direct_url());
  Messages log;
  auto a = Store::builder(bouncer.url()).schema(db.name()).log_sink(log.sink()).build();
  auto b = Store::builder(bouncer.url()).schema(db.name()).build();
  CHECK(a.behind_pooler());
  CHECK_FALSE(a.prepares_statements());
  CHECK(log.count("prepared statements off") == 1);
  CHECK(log.count("pooler") == 1);
  for (int i = 0; i < 3; ++i) {  // two stores' connections take turns on the server sessions
    exercise(a);
    exercise(b);
  }
  CHECK(log.lines.size() == 1);
}

TEST_CASE("prepared_statements_on_behind_a_transaction_pooler_fails_with_a_hint") {
  TestSchema db;
  PgBouncer::Options one_session;
  one_session.pool_size = 1;
  auto bouncer = PgBouncer::start(testing::direct_url(), one_session);
  Messages log;
  auto a = Store::builder(bouncer.url())
               .schema(db.name())
               .prepared_statements(PreparedStatements::kOn)
               .log_sink(log.sink())
               .build();
  auto b = Store::builder(bouncer.url())
               .schema(db.name())
               .prepared_statements(PreparedStatements::kOn)
               .build();
  CHECK(log.count("prepared statements are on") == 1);  // warned, not changed
  CHECK(a.prepares_statements());
  a.events().append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
  // b's first statement gets the name a's first statement holds in the one server session.
  try {
    b.events().append_stream(new_uuid(), Expected::any(), {Event("B", 1)});
    FAIL("a named statement survived a transaction pooler");
  } catch (const Error& e) {
    CHECK(e.sqlstate() == "42P05");
    CHECK(std::string(e.what()).find("prepared_statements") != std::string::npos);
  }
}

TEST_CASE("auto_falls_back_on_the_first_42P05_and_runs_the_work_again") {
  // A pool that never ran the pooler detection (as if a pooler passed the server's process id
  // through), sharing the one server session with a store that prepares.
  TestSchema db;
  PgBouncer::Options one_session;
  one_session.pool_size = 1;
  auto bouncer = PgBouncer::start(testing::direct_url(), one_session);
  Messages log;
  auto mode = std::make_shared<db::StatementMode>(PreparedStatements::kAuto, log.sink());
  db::Pool pool(db::ConnInfo::parse(bouncer.url()), 2, std::chrono::seconds(10), mode);
  auto planted = db::with_connection(pool, [](db::Connection& conn) {
    pqxx::work txn(conn.raw());
    const auto r = db::exec(txn, conn, "select $1::int + 1", 1);  // prepares rf0
    txn.commit();
    return r[0][0].as<int>();
  });
  CHECK(planted == 2);
  CHECK(mode->prepared());
  int runs = 0;
  // Hold the planting connection, so the work below runs on a new one whose rf0 collides with
  // the planted one in the shared server session.
  auto held = pool.acquire();
  const auto sum = db::with_connection(pool, [&](db::Connection& conn) {
    ++runs;
    pqxx::work txn(conn.raw());
    const auto r = db::exec(txn, conn, "select $1::int + 40", 2);
    txn.commit();
    return r[0][0].as<int>();
  });
  CHECK(sum == 42);
  CHECK_FALSE(mode->prepared());
  CHECK(runs == 2);
  CHECK(log.count("42P05") == 1);
}
