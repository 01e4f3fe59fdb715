// Unit tests: no database.
#include <rillflow/rillflow.hpp>

#include "db/conninfo.hpp"
#include "db/sql.hpp"
#include "runtime/membership.hpp"
#include "runtime/retry.hpp"
#include "schema/migrations.hpp"

#include <doctest/doctest.h>

#include <boost/describe.hpp>

#include <algorithm>
#include <set>

using namespace rillflow;

namespace {
struct Placed {
  int order_id;
  std::string sku;
};
BOOST_DESCRIBE_STRUCT(Placed, (), (order_id, sku))
}  // namespace

TEST_CASE("event_converts_described_structs_and_json_values") {
  const Event e("Placed", Placed{7, "abc"});
  CHECK(e.body.at("order_id").as_int64() == 7);
  CHECK(e.body.at("sku").as_string() == "abc");
  const Event j("Raw", boost::json::object{{"a", 1}});
  CHECK(j.body.at("a").as_int64() == 1);
  const Event n("Num", 3);
  CHECK(n.body.as_int64() == 3);
}

TEST_CASE("expected_prints_what_it_expects") {
  CHECK(Expected::any().to_string() == "any");
  CHECK(Expected::no_stream().to_string() == "no_stream");
  CHECK(Expected::stream_exists().to_string() == "stream_exists");
  CHECK(Expected::exact(12).to_string() == "exact(12)");
  CHECK(Expected::exact(3) == Expected::exact(3));
  CHECK_FALSE(Expected::exact(3) == Expected::exact(4));
}

TEST_CASE("error_codes_are_stable_and_named") {
  CHECK(static_cast<int>(ErrorCode::kVersionConflict) == 10);
  CHECK(static_cast<int>(ErrorCode::kIdempotencyConflict) == 11);
  CHECK(static_cast<int>(ErrorCode::kConnection) == 3);
  CHECK(error_code_name(ErrorCode::kVersionConflict) == "version_conflict");
  const VersionConflict v("s-1", "exact(2)", 5);
  CHECK(v.retryable());
  CHECK_FALSE(v.connection_unusable());
  CHECK(std::string(v.what()).find("expected exact(2), actual version 5") != std::string::npos);
  CHECK(Error(ErrorCode::kDatabase, "x", "40001").retryable());
  CHECK_FALSE(Error(ErrorCode::kDatabase, "x", "23505").retryable());
  const ConfigError c("database.url", "must not be empty");
  CHECK(c.key_path() == "database.url");
  CHECK(std::string(c.what()) == "database.url: must not be empty");
}

TEST_CASE("uuids_parse_only_in_canonical_form") {
  const auto id = new_uuid();
  CHECK(parse_uuid(to_string(id)) == id);
  CHECK(new_uuid() != id);
  CHECK_THROWS_AS(parse_uuid("{" + to_string(id) + "}"), Error);
  CHECK_THROWS_AS(parse_uuid("nope"), Error);
  CHECK_THROWS_AS(parse_uuid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), Error);
  const std::string text = "0123abcd-EF45-6789-aBcD-ef0123456789";
  CHECK(to_string(parse_uuid(text)) == "0123abcd-ef45-6789-abcd-ef0123456789");
  // One wrong character anywhere, a dash out of place, a length off by one: refused.
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto bad = text;
    bad[i] = (bad[i] == '-') ? '0' : 'g';
    CHECK_THROWS_AS(parse_uuid(bad), Error);
  }
  CHECK_THROWS_AS(parse_uuid(text.substr(1)), Error);
  CHECK_THROWS_AS(parse_uuid(text + "0"), Error);
}

TEST_CASE("conninfo_describes_the_target_without_the_password") {
  auto info = db::ConnInfo::parse("postgresql://app:hunter2@db.example:6543/orders");
  CHECK(info.describe() == "db.example:6543/orders as app");
  CHECK(info.describe().find("hunter2") == std::string::npos);
  info.set("connect_timeout", "5");
  CHECK(info.get("connect_timeout") == "5");
  CHECK(info.to_conninfo().find("connect_timeout='5'") != std::string::npos);
  auto kv = db::ConnInfo::parse("host=/tmp/x port=5 dbname='we ird' password='a\\'b'");
  CHECK(kv.get("dbname") == "we ird");
  CHECK(kv.to_conninfo().find("password='a\\'b'") != std::string::npos);
  CHECK_THROWS_AS(db::ConnInfo::parse("garbage without equals"), Error);
}

TEST_CASE("identifiers_are_validated_and_quoted") {
  validate_identifier("public", "schema");
  validate_identifier("tenant_42", "schema");
  CHECK_THROWS_AS(validate_identifier("Tenant", "schema"), Error);
  CHECK_THROWS_AS(validate_identifier("pg_temp", "schema"), Error);
  CHECK_THROWS_AS(validate_identifier("a\"b", "schema"), Error);
  CHECK(db::quote_ident("a\"b") == "\"a\"\"b\"");
  CHECK(db::with_schema("select * from {schema}.t, {schema}.u", "\"s\"") ==
        "select * from \"s\".t, \"s\".u");
}

TEST_CASE("migrations_are_numbered_densely_and_checksums_are_stable") {
  int expected = 1;
  std::set<std::string> sums;
  for (const auto& m : schema::migrations()) {
    CHECK(m.version == expected++);
    CHECK(m.sql.find("{schema}") != std::string_view::npos);
    sums.insert(schema::checksum(m.sql));
  }
  CHECK(sums.size() == schema::migrations().size());
  CHECK(schema::checksum("") == "cbf29ce484222325");  // FNV-1a 64 offset basis
  CHECK(schema::checksum("a") == "af63dc4c8601ec8c");
}

TEST_CASE("retry_delays_double_from_the_base_up_to_the_cap") {
  runtime::RetryPolicy p;
  p.max_attempts = 4;
  p.base_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(350);
  CHECK(p.delay(1).count() == 100);
  CHECK(p.delay(2).count() == 200);
  CHECK(p.delay(3).count() == 350);  // capped
  CHECK(p.delay(30).count() == 350);
  CHECK(p.after_failure(1) == runtime::RetryPolicy::Action::kRetry);
  CHECK(p.after_failure(3) == runtime::RetryPolicy::Action::kRetry);
  CHECK(p.after_failure(4) == runtime::RetryPolicy::Action::kPark);
  p.on_failure = FailurePolicy::kStop;
  CHECK(p.after_failure(4) == runtime::RetryPolicy::Action::kStop);
  p.base_delay = std::chrono::milliseconds(0);
  CHECK(p.delay(1).count() == 1);  // never zero: a retry always waits
  ProjectionOptions o;
  o.max_attempts = 0;
  CHECK(runtime::RetryPolicy::of(o).max_attempts == 1);
}

TEST_CASE("assignment_splits_units_of_any_kind_across_live_runtimes_deterministically") {
  using runtime::Membership;
  using runtime::UnitKey;
  const std::vector<UnitKey> units{{"projection", "c"},
                                   {"projection", "a"},
                                   {"snapshot", "a"},
                                   {"projection", "b"},
                                   {"projection", "a"}};
  // Four distinct units (the duplicate dropped) split between two nodes, two each (the cap),
  // whatever order the live set comes in.
  const auto x = Membership::assign(units, {"node-b", "node-a"}, "node-a");
  const auto y = Membership::assign(units, {"node-a", "node-b"}, "node-b");
  REQUIRE(x.size() == 2);
  REQUIRE(y.size() == 2);
  for (const auto& k : x) CHECK(std::find(y.begin(), y.end(), k) == y.end());
  // Same inputs in any order: same answer on every node.
  CHECK(Membership::assign({units.rbegin(), units.rend()}, {"node-a", "node-b"}, "node-a") == x);
  // Not in the live set (yet), or nobody live: this node runs everything.
  CHECK(Membership::assign(units, {"node-a", "node-b"}, "node-c").size() == 4);
  CHECK(Membership::assign(units, {}, "node-a").size() == 4);
  // Every unit goes to exactly one live node.
  std::set<std::string> seen;
  for (const auto* self : {"n1", "n2", "n3"}) {
    for (const auto& k : Membership::assign(units, {"n1", "n2", "n3"}, self))
      CHECK(seen.insert(k.kind + "/" + k.name).second);
  }
  CHECK(seen.size() == 4);
}

TEST_CASE("the_live_window_is_two_and_a_half_heartbeats_capped_by_the_lease_ttl") {
  using runtime::Membership;
  using std::chrono::milliseconds;
  CHECK(Membership::live_window_for(milliseconds(1000), milliseconds(30000)).count() == 2500);
  CHECK(Membership::live_window_for(milliseconds(1000), milliseconds(2000)).count() == 2000);
}

TEST_CASE("the_notify_payload_names_the_schema") {
  CHECK(notify::kDefaultChannel == "rillflow_events");
  CHECK(StoreOptions{}.notify_channel == notify::kDefaultChannel);
  CHECK(notify::concerns(notify::payload_for("tenant_a"), "tenant_a"));
  CHECK_FALSE(notify::concerns(notify::payload_for("tenant_a"), "tenant_b"));
}
