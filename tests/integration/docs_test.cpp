// DocumentStore: versions, optimistic concurrency, partial updates, soft delete, bulk put.
#include "support/test_db.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

#include <atomic>
#include <latch>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace doc_test {

struct Customer {
  static constexpr std::string_view kCollection = "customers";
  std::string email;
  std::string tier;
};
BOOST_DESCRIBE_STRUCT(Customer, (), (email, tier))

struct Invoice {
  std::string email;
  double amount = 0;
};
BOOST_DESCRIBE_STRUCT(Invoice, (), (email, amount))

}  // namespace doc_test

RILLFLOW_DOCUMENT(doc_test::Invoice, "invoices");

using doc_test::Customer;
using doc_test::Invoice;

TEST_CASE("put_returns_increasing_versions_and_get_reads_document_and_version") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  CHECK_FALSE(docs.get<Customer>(id).has_value());
  CHECK(docs.put(id, Customer{"a@x", "free"}) == 1);
  auto [c, v] = *docs.get<Customer>(id);
  CHECK(c.email == "a@x");
  CHECK(c.tier == "free");
  CHECK(v == 1);
  CHECK(docs.put(id, Customer{"a@x", "pro"}) == 2);
  CHECK(docs.get<Customer>(id)->doc.tier == "pro");
  CHECK(docs.get<Customer>(id)->version == 2);
}

TEST_CASE("documents_of_different_types_with_one_id_never_collide") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  docs.put(id, Customer{"a@x", "free"});
  docs.put(id, Invoice{"a@x", 12.5});
  CHECK(docs.get<Customer>(id)->doc.tier == "free");
  CHECK(docs.get<Invoice>(id)->doc.amount == 12.5);
  CHECK(docs.get<Invoice>(id)->version == 1);
  CHECK(docs.collections_of(id) == std::vector<std::string>{"customers", "invoices"});
  CHECK(docs.remove<Invoice>(id));
  CHECK(docs.get<Customer>(id).has_value());
  CHECK_FALSE(docs.get<Invoice>(id).has_value());
}

TEST_CASE("writes_with_an_expected_version_reject_stale_and_missing_documents") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  CHECK_THROWS_AS(docs.put(id, Customer{"a@x", "free"}, 3), DocNotFound);
  CHECK_FALSE(docs.get<Customer>(id).has_value());  // the rejected write left nothing
  CHECK(docs.put(id, Customer{"a@x", "free"}, 0) == 1);
  try {
    docs.put(id, Customer{"a@x", "pro"}, 0);
    FAIL("expected a DocVersionConflict");
  } catch (const DocVersionConflict& e) {
    CHECK(e.code() == ErrorCode::kDocVersionConflict);
    CHECK(e.collection() == "customers");
    CHECK(e.id() == to_string(id));
    CHECK(e.expected() == 0);
    CHECK(e.actual() == 1);
  }
  CHECK(docs.put(id, Customer{"a@x", "pro"}, 1) == 2);
  CHECK_THROWS_AS(docs.put(id, Customer{"a@x", "gold"}, 1), DocVersionConflict);
  CHECK(docs.get<Customer>(id)->doc.tier == "pro");
  CHECK_THROWS_AS(docs.remove<Customer>(id, 1), DocVersionConflict);
  CHECK_THROWS_AS(docs.remove<Customer>(new_uuid(), 1), DocNotFound);
  CHECK_FALSE(docs.remove<Customer>(new_uuid()));
  CHECK(docs.remove<Customer>(id, 2));
  CHECK_FALSE(docs.get<Customer>(id).has_value());
}

TEST_CASE("update_reads_modifies_and_writes_under_the_expected_version") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  CHECK_THROWS_AS(docs.update<Customer>(id, 1, [](Customer& c) { c.tier = "pro"; }), DocNotFound);
  docs.put(id, Customer{"a@x", "free"});
  CHECK(docs.update<Customer>(id, 1, [](Customer& c) { c.tier = "pro"; }) == 2);
  CHECK(docs.get<Customer>(id)->doc.tier == "pro");
  bool called = false;
  CHECK_THROWS_AS(docs.update<Customer>(id, 1, [&](Customer&) { called = true; }),
                  DocVersionConflict);
  CHECK_FALSE(called);
  // An exception inside fn leaves the document as it was.
  CHECK_THROWS_AS(docs.update<Customer>(id, 2,
                                        [](Customer& c) {
                                          c.tier = "lost";
                                          throw std::runtime_error("no");
                                        }),
                  std::exception);
  CHECK(docs.get<Customer>(id)->doc.tier == "pro");
  CHECK(docs.get<Customer>(id)->version == 2);
}

TEST_CASE("concurrent_updates_of_one_document_let_exactly_one_writer_win_per_version") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  docs.put(id, Customer{"a@x", "free"});
  constexpr int kWriters = 8;
  for (const bool read_modify_write : {true, false}) {
    const auto version = docs.get<Customer>(id)->version;
    std::atomic<int> won{0}, conflicted{0};
    std::latch start(kWriters);
    std::vector<std::thread> threads;
    for (int i = 0; i < kWriters; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          const std::string tier = "t" + std::to_string(i);
          if (read_modify_write) {
            docs.update<Customer>(id, version, [&](Customer& c) { c.tier = tier; });
          } else {
            docs.put(id, Customer{"a@x", tier}, version);
          }
          ++won;
        } catch (const DocVersionConflict& e) {
          CHECK(e.actual() == version + 1);
          ++conflicted;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(won == 1);
    CHECK(conflicted == kWriters - 1);
    CHECK(docs.get<Customer>(id)->version == version + 1);
  }
}

TEST_CASE("patch_changes_only_the_named_paths_and_creates_missing_parents") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  docs.put("people", id,
           parse_json(R"({"profile":{"name":"Alice","age":30},"tags":["a","b"],"x":1})"));
  CHECK(docs.patch("people", id, 1, "profile.name", Json("Alicia")) == 2);
  auto doc = docs.get("people", id)->doc;
  CHECK(doc == parse_json(R"({"profile":{"name":"Alicia","age":30},"tags":["a","b"],"x":1})"));

  CHECK(docs.patch_fields("people", id, std::nullopt,
                          {{"profile.address.city", Json("Oslo")},
                           {"extra.flag", Json(true)},
                           {"tags[1]", Json("B")},
                           {"tags[2]", Json("c")}}) == 3);
  doc = docs.get("people", id)->doc;
  CHECK(doc == parse_json(R"({"profile":{"name":"Alicia","age":30,"address":{"city":"Oslo"}},
                              "tags":["a","B","c"],"x":1,"extra":{"flag":true}})"));

  CHECK_THROWS_AS(docs.patch_fields("people", id, 2, {{"x", Json(2)}}), DocVersionConflict);
  CHECK_THROWS_AS(docs.patch_fields("people", new_uuid(), std::nullopt, {{"x", Json(2)}}),
                  DocNotFound);
  // A scalar parent is not silently replaced; the document stays as it was.
  CHECK_THROWS_AS(docs.patch_fields("people", id, 3, {{"x.y", Json(2)}}), Error);
  CHECK(docs.get("people", id)->version == 3);
  CHECK_THROWS_AS(docs.patch_fields("people", id, 3, {{"a..b", Json(2)}}), Error);

  // Typed patch; keys with dots, quotes and SQL in them are plain keys.
  docs.put(id, Customer{"a@x", "free"});
  CHECK(docs.patch<Customer>(id, 1, "tier", "pro") == 2);
  CHECK(docs.patch<Customer>(id, 2, R"(we\.ird'"); drop table docs; --)", 1) == 3);
  const auto raw = docs.get("customers", id)->doc;
  CHECK(raw.at("tier") == "pro");
  CHECK(raw.at("email") == "a@x");
  CHECK(raw.at(R"(we.ird'"); drop table docs; --)") == 1);
}

TEST_CASE("soft_delete_hides_documents_until_restore_and_put_revives_them") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  CHECK_THROWS_AS(docs.soft_delete<Customer>(id), DocNotFound);
  docs.put(id, Customer{"a@x", "free"});
  CHECK(docs.soft_delete<Customer>(id) == 2);
  CHECK(docs.soft_delete<Customer>(id) == 2);  // already deleted: unchanged
  CHECK_FALSE(docs.get<Customer>(id).has_value());
  const auto row = docs.get_any("customers", id);
  REQUIRE(row.has_value());
  CHECK(row->deleted);
  CHECK(row->version == 2);
  CHECK_THROWS_AS(docs.update<Customer>(id, 2, [](Customer&) {}), DocNotFound);
  CHECK_THROWS_AS(docs.patch<Customer>(id, 2, "tier", "x"), DocNotFound);
  CHECK(docs.restore<Customer>(id) == 3);
  CHECK(docs.restore<Customer>(id) == 3);
  CHECK(docs.get<Customer>(id)->doc.email == "a@x");
  docs.soft_delete<Customer>(id);
  CHECK(docs.put(id, Customer{"b@x", "pro"}) == 5);
  CHECK(docs.get<Customer>(id)->doc.email == "b@x");
}

TEST_CASE("put_many_writes_a_batch_and_returns_versions_in_input_order") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto a = new_uuid(), b = new_uuid(), c = new_uuid();
  docs.put(b, Customer{"b@x", "free"});
  const auto versions = docs.put_many<Customer>(
      {{a, Customer{"a@x", "free"}}, {b, Customer{"b@x", "pro"}}, {c, Customer{"c@x", "free"}}});
  CHECK(versions == std::vector<std::int64_t>{1, 2, 1});
  CHECK(docs.get<Customer>(b)->doc.tier == "pro");
  CHECK(docs.get<Customer>(c).has_value());
  CHECK_THROWS_AS(docs.put_many<Customer>({{a, Customer{}}, {a, Customer{}}}), Error);
  CHECK(docs.put_many<Customer>({}).empty());
}

TEST_CASE("documents_that_do_not_convert_to_the_type_raise_a_rillflow_error") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto id = new_uuid();
  docs.put("customers", id, parse_json(R"({"email": 5})"));
  try {
    docs.get<Customer>(id);
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
  }
  CHECK_THROWS_AS(docs.put("", id, Json(1)), Error);
}
