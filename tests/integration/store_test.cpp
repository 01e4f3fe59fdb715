#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

TEST_CASE("connecting_to_a_database_that_is_down_names_host_and_port_not_the_password") {
  try {
    Store::builder("postgresql://app:s3cr3t-pw@127.0.0.1:1/appdb")
        .connect_timeout(std::chrono::seconds(2))
        .build();
    FAIL("connected to nothing");
  } catch (const ConnectionError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("127.0.0.1:1") != std::string::npos);
    CHECK(msg.find("s3cr3t-pw") == std::string::npos);
    CHECK(e.code() == ErrorCode::kConnection);
    CHECK(e.retryable());
    CHECK(e.connection_unusable());
  }
}

TEST_CASE("malformed_database_urls_are_rejected_without_echoing_secrets") {
  for (const std::string& url :
       std::vector<std::string>{"not a url", "postgresql://u:pw-secret@host:5432/db?nosuchoption=1",
                                "postgresql://u:pw-secret@[::1/db", ""}) {
    CAPTURE(url);
    try {
      Store::connect(url);
      FAIL("accepted a malformed URL");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kInvalidArgument);
      CHECK(std::string(e.what()).find("pw-secret") == std::string::npos);
    }
  }
}

TEST_CASE("store_copies_share_one_bounded_pool_and_time_out_when_exhausted") {
  TestSchema db;
  auto store =
      db.builder().max_connections(2).acquire_timeout(std::chrono::milliseconds(300)).build();
  store.schema().sync();
  auto copy = store;  // cheap, shares the pool
  // Two raw transactions hold locks on one stream; the pool has only two connections, so a
  // third caller waits and times out with kTimeout.
  auto conn = db.raw();
  pqxx::work blocker(conn);
  const auto id = new_uuid();
  store.events().append_stream(id, Expected::any(), {Event("A", 1)});
  blocker.exec("select 1 from \"" + db.name() + "\".streams where stream_id = '" + to_string(id) +
               "' for update");
  std::vector<std::thread> waiting;
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back(
        [&] { copy.events().append_stream(id, Expected::any(), {Event("B", 2)}); });
  }
  // Wait until both pooled connections are blocked on the row lock.
  for (int i = 0; i < 500; ++i) {
    auto probe_conn = db.raw();
    pqxx::nontransaction probe(probe_conn);
    const auto n =
        probe
            .exec(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and "
                "query like '%streams%'")[0][0]
            .as<int>();
    if (n >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  try {
    store.events().head();
    FAIL("a third caller got a connection from a pool of two");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kTimeout);
  }
  blocker.commit();
  for (auto& t : waiting) t.join();
  CHECK(store.events().stream_version(id) == 3);
}

TEST_CASE("a_dropped_connection_is_replaced_transparently_on_the_next_call") {
  TestSchema db;
  auto store = db.builder().max_connections(1).application_name("rf_kill_me").build();
  const auto id = new_uuid();
  store.events().append_stream(id, Expected::any(), {Event("A", 1)});
  auto admin_conn = db.raw();
  pqxx::nontransaction admin(admin_conn);
  admin.exec(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = "
      "'rf_kill_me'");
  // The first call on the dead connection fails with a ConnectionError; the pool drops it.
  try {
    store.events().head();
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kConnection);
  }
  CHECK(store.events().read_stream(id).size() == 1);
}
