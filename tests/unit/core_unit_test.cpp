// Unit tests: no database.
#include <rillflow/rillflow.hpp>

#include "db/conninfo.hpp"
#include "db/sql.hpp"
#include "schema/migrations.hpp"

#include <doctest/doctest.h>

#include <boost/describe.hpp>

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
