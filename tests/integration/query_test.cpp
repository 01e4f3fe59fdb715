// The query DSL: every predicate, ordering, paging, projections, soft delete, compiled queries,
// hostile paths and values.
#include "support/test_db.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

#include <algorithm>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace query_test {

struct Member {
  static constexpr std::string_view kCollection = "members";
  std::string email;
  std::string status;
  int age = 0;
  std::vector<std::string> tags;
};
BOOST_DESCRIBE_STRUCT(Member, (), (email, status, age, tags))

struct EmailOnly {
  std::string email;
};
BOOST_DESCRIBE_STRUCT(EmailOnly, (), (email))

// A compiled query with an argument: one prepared statement serves every status.
struct MembersByStatus : CompiledQuery<Member> {
  explicit MembersByStatus(std::string s) : status(std::move(s)) {}
  std::string status;
  void configure(DocumentQueryContext& q) const override {
    q.filter(Predicate::eq("status", status)).order_by("email", SortDirection::kAsc);
  }
};

struct VipEmails : CompiledQuery<Json> {
  void configure(DocumentQueryContext& q) const override {
    q.from<Member>()
        .filter(Predicate::contains("tags", std::vector<std::string>{"vip"}))
        .order_by("age", SortDirection::kDesc)
        .select_fields({{"mail", "email"}, {"years", "age"}});
  }
};

// Six members, ages 20..45; anna and dave are vip.
void seed(const DocumentStore& docs) {
  const std::vector<Member> all{{"anna@x", "active", 30, {"vip", "early"}},
                                {"bob@x", "active", 20, {}},
                                {"carl@x", "inactive", 45, {"early"}},
                                {"dave@x", "active", 41, {"vip"}},
                                {"eve@x", "banned", 25, {}},
                                {"fay@x", "inactive", 33, {}}};
  for (const auto& m : all) docs.put(new_uuid(), m);
}

std::vector<std::string> emails(const std::vector<Member>& members) {
  std::vector<std::string> out;
  for (const auto& m : members) out.push_back(m.email);
  return out;
}

using Emails = std::vector<std::string>;

}  // namespace query_test

using namespace query_test;

TEST_CASE("query_filters_sorts_and_pages_as_the_readme_shows") {
  TestSchema db;
  const auto docs = db.store().docs();
  seed(docs);
  const auto page1 = docs.query<Member>()
                         .filter(Predicate::eq("status", "active"))
                         .order_by("email", SortDirection::Asc)
                         .page(1, 2)
                         .fetch_all();
  CHECK(emails(page1) == Emails{"anna@x", "bob@x"});
  const auto page2 = docs.query<Member>()
                         .filter(Predicate::eq("status", "active"))
                         .order_by("email", SortDirection::Asc)
                         .page(2, 2)
                         .fetch_all();
  CHECK(emails(page2) == Emails{"dave@x"});
  CHECK(docs.query<Member>().filter(Predicate::eq("status", "active")).count() == 3);
  CHECK(docs.query<Member>().count() == 6);
}

TEST_CASE("each_predicate_selects_exactly_the_expected_documents") {
  TestSchema db;
  const auto docs = db.store().docs();
  seed(docs);
  auto run = [&](Predicate p) {
    return emails(docs.query<Member>().filter(std::move(p)).order_by("email").fetch_all());
  };
  CHECK(run(Predicate::ne("status", "active")) == Emails{"carl@x", "eve@x", "fay@x"});
  CHECK(run(Predicate::lt("age", 25)) == Emails{"bob@x"});
  CHECK(run(Predicate::le("age", 25)) == Emails{"bob@x", "eve@x"});
  CHECK(run(Predicate::gt("age", 41)) == Emails{"carl@x"});
  CHECK(run(Predicate::ge("age", 41)) == Emails{"carl@x", "dave@x"});
  CHECK(run(Predicate::between("age", 25, 33)) == Emails{"anna@x", "eve@x", "fay@x"});
  CHECK(run(Predicate::gt("email", "d")) == Emails{"dave@x", "eve@x", "fay@x"});
  CHECK(run(Predicate::in("status", std::vector<std::string>{"banned", "inactive"})) ==
        Emails{"carl@x", "eve@x", "fay@x"});
  CHECK(run(Predicate::in("age", {Json(20), Json(45)})) == Emails{"bob@x", "carl@x"});
  CHECK(run(Predicate::contains("tags", std::vector<std::string>{"vip"})) ==
        Emails{"anna@x", "dave@x"});
  CHECK(run(Predicate::contains("tags", std::vector<std::string>{"vip", "early"})) ==
        Emails{"anna@x"});
  CHECK(run(Predicate::eq("tags[0]", "early")) == Emails{"carl@x"});
  CHECK(run(Predicate::exists("tags[0]")) == Emails{"anna@x", "carl@x", "dave@x"});
  CHECK(run(Predicate::exists("nickname")).empty());
  CHECK(run(Predicate::like("email", "%a%")) == Emails{"anna@x", "carl@x", "dave@x", "fay@x"});
  CHECK(run(Predicate::like("email", "A%")).empty());
  CHECK(run(Predicate::ilike("email", "A%")) == Emails{"anna@x"});
  CHECK(run(Predicate::eq("status", "active") && Predicate::gt("age", 25)) ==
        Emails{"anna@x", "dave@x"});
  CHECK(run(Predicate::eq("status", "banned") || Predicate::lt("age", 21)) ==
        Emails{"bob@x", "eve@x"});
  CHECK(run(!Predicate::eq("status", "active")) == Emails{"carl@x", "eve@x", "fay@x"});
  // NOT of a comparison on a missing field: every document.
  CHECK(run(Predicate::not_(Predicate::gt("nickname", "a"))).size() == 6);
  CHECK(run(Predicate::or_({})).empty());
  CHECK(run(Predicate::and_({})).size() == 6);
}

TEST_CASE("comparisons_match_only_values_of_the_operands_json_type") {
  TestSchema db;
  const auto docs = db.store().docs();
  docs.put("things", new_uuid(), parse_json(R"({"n": 5, "k": "a"})"));
  docs.put("things", new_uuid(), parse_json(R"({"n": "abc", "k": "b"})"));
  docs.put("things", new_uuid(), parse_json(R"({"n": 10.5, "k": "c"})"));
  docs.put("things", new_uuid(), parse_json(R"({"k": "d"})"));
  DocumentQueryContext q("things");
  auto keys = [&](Predicate p) {
    std::vector<std::string> out;
    for (const auto& row : DocumentQuery<Json>(db.store().shared_state(), "things")
                               .filter(std::move(p))
                               .order_by("k")
                               .fetch_all()) {
      out.emplace_back(row.at("k").as_string());
    }
    return out;
  };
  CHECK(keys(Predicate::lt("n", 100)) == Emails{"a", "c"});  // not the string "abc"
  CHECK(keys(Predicate::gt("n", "a")) == Emails{"b"});
  CHECK(keys(Predicate::eq("n", 10.5)) == Emails{"c"});
  CHECK(keys(Predicate::eq("n", 5.0)) == Emails{"a"});  // numerically equal
}

TEST_CASE("ordering_sorts_numbers_numerically_and_text_by_collation") {
  TestSchema db;
  const auto docs = db.store().docs();
  seed(docs);
  CHECK(emails(docs.query<Member>().order_by("age", SortDirection::kDesc).fetch_all()) ==
        Emails{"carl@x", "dave@x", "fay@x", "anna@x", "eve@x", "bob@x"});
  CHECK(emails(docs.query<Member>()
                   .order_by("status")
                   .order_by("age", SortDirection::kDesc)
                   .limit(4)
                   .offset(1)
                   .fetch_all()) == Emails{"anna@x", "bob@x", "eve@x", "carl@x"});
  // 9 < 10 as numbers (as text "10" < "9").
  docs.put("nums", new_uuid(), parse_json(R"({"v": 10})"));
  docs.put("nums", new_uuid(), parse_json(R"({"v": 9})"));
  docs.put("nums", new_uuid(), parse_json(R"({})"));
  const auto rows =
      DocumentQuery<Json>(db.store().shared_state(), "nums").order_by("v").fetch_all();
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].at("v") == 9);
  CHECK(rows[1].at("v") == 10);
  CHECK(rows[2].as_object().empty());  // missing sorts last
}

TEST_CASE("fetch_one_optional_and_first_return_exactly_what_they_promise") {
  TestSchema db;
  const auto docs = db.store().docs();
  seed(docs);
  auto q = [&] { return docs.query<Member>(); };
  CHECK(q().filter(Predicate::eq("email", "bob@x")).fetch_one().age == 20);
  CHECK_THROWS_AS(q().filter(Predicate::eq("email", "zed@x")).fetch_one(), DocNotFound);
  CHECK_THROWS_AS(q().filter(Predicate::eq("status", "active")).fetch_one(), Error);
  CHECK_FALSE(q().filter(Predicate::eq("email", "zed@x")).fetch_optional().has_value());
  CHECK(q().filter(Predicate::eq("email", "eve@x")).fetch_optional()->status == "banned");
  CHECK_THROWS_AS(q().filter(Predicate::eq("status", "active")).fetch_optional(), Error);
  CHECK(q().order_by("age").fetch_first()->email == "bob@x");
  // fetch_first keeps the offset and never adds a second LIMIT.
  CHECK(q().order_by("age").limit(3).offset(2).fetch_first()->email == "anna@x");
  CHECK_FALSE(q().order_by("age").offset(6).fetch_first().has_value());
  CHECK(q().limit(0).fetch_all().empty());
}

TEST_CASE("select_fields_projects_paths_into_named_keys") {
  TestSchema db;
  const auto docs = db.store().docs();
  seed(docs);
  const auto rows = docs.query<Member>()
                        .filter(Predicate::eq("status", "inactive"))
                        .order_by("email")
                        .select_fields({{"mail", "email"}, {"first_tag", "tags[0]"}})
                        .fetch_all<Json>();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == parse_json(R"({"mail":"carl@x","first_tag":"early"})"));
  CHECK(rows[1] == parse_json(R"({"mail":"fay@x","first_tag":null})"));
  const auto typed = docs.query<Member>()
                         .filter(Predicate::eq("email", "eve@x"))
                         .select_fields({{"email", "email"}})
                         .fetch_one<EmailOnly>();
  CHECK(typed.email == "eve@x");
}

TEST_CASE("soft_deleted_documents_are_hidden_unless_the_query_asks_for_them") {
  TestSchema db;
  const auto docs = db.store().docs();
  const auto gone = new_uuid();
  docs.put(gone, Member{"gone@x", "active", 50, {}});
  docs.put(new_uuid(), Member{"here@x", "active", 50, {}});
  docs.soft_delete<Member>(gone);
  CHECK(emails(docs.query<Member>().fetch_all()) == Emails{"here@x"});
  CHECK(emails(docs.query<Member>().include_deleted().order_by("email").fetch_all()) ==
        Emails{"gone@x", "here@x"});
  CHECK(emails(docs.query<Member>().only_deleted().fetch_all()) == Emails{"gone@x"});
  CHECK(docs.query<Member>().only_deleted().count() == 1);
}

TEST_CASE("full_text_match_finds_words_in_a_text_field") {
  TestSchema db;
  const auto docs = db.store().docs();
  docs.put("posts", new_uuid(), parse_json(R"({"t": 1, "body": "The quick brown foxes jumped"})"));
  docs.put("posts", new_uuid(), parse_json(R"({"t": 2, "body": "A lazy dog sleeps"})"));
  const DocumentQuery<Json> posts(db.store().shared_state(), "posts");
  auto q = posts;
  CHECK(q.filter(Predicate::matches("body", "fox", "english")).fetch_one().at("t") == 1);
  q = posts;
  CHECK(q.filter(Predicate::matches("body", "lazy -cat")).fetch_one().at("t") == 2);
  q = posts;
  CHECK(q.filter(Predicate::matches("body", "fox", "simple")).count() == 0);  // no stemming
}

TEST_CASE("hostile_paths_and_values_are_data_never_sql") {
  TestSchema db;
  const auto docs = db.store().docs();
  const std::string evil_key = R"(x'); drop table docs; --)";
  const std::string evil_key2 = R"(a"}{,b\)";
  const std::string evil_value = R"('; delete from docs where ''=')";
  boost::json::object doc;
  doc[evil_key] = evil_value;
  doc[evil_key2] = 7;
  doc["k"] = "evil";
  docs.put("odd", new_uuid(), doc);
  docs.put("odd", new_uuid(), parse_json(R"({"k": "plain"})"));
  DocumentQuery<Json> base(db.store().shared_state(), "odd");

  auto q = base;
  CHECK(q.filter(Predicate::eq(evil_key, evil_value)).fetch_one().at("k") == "evil");
  q = base;
  CHECK(q.filter(Predicate::eq(R"(a"}{,b\\)", 7)).count() == 1);  // '\\' escapes '\'
  q = base;
  CHECK(q.filter(Predicate::like(evil_key, evil_value)).count() == 1);
  q = base;
  CHECK(q.filter(Predicate::gt(evil_key, "")).order_by(evil_key).count() == 1);
  q = base;
  CHECK(q.select_fields({{evil_key, evil_key}}).order_by(evil_key).fetch_all().size() == 2);
  q = base;
  CHECK_THROWS_AS(q.filter(Predicate::matches("k", "x", "english'; drop table docs; --")).count(),
                  Error);
  // A hostile collection name is just a name.
  DocumentQuery<Json> evil_collection(db.store().shared_state(), "odd' or '1'='1");
  CHECK(evil_collection.count() == 0);
  // Malformed paths are rejected before any SQL runs.
  q = base;
  CHECK_THROWS_AS(q.filter(Predicate::eq("a[x]", 1)).count(), Error);
  // Everything is still there.
  CHECK(base.count() == 2);
  CHECK(docs.query<Member>().count() == 0);
}

TEST_CASE("compiled_queries_run_prepared_with_their_arguments_bound") {
  TestSchema db;
  const auto docs = db.store().docs();
  seed(docs);
  CHECK(emails(docs.execute_compiled(MembersByStatus("active"))) ==
        Emails{"anna@x", "bob@x", "dave@x"});
  // Same shape, other value: the prepared statement is reused with a new parameter.
  CHECK(emails(docs.execute_compiled(MembersByStatus("inactive"))) == Emails{"carl@x", "fay@x"});
  CHECK(docs.execute_compiled(MembersByStatus("x'; drop table docs; --")).empty());
  const auto vips = docs.execute_compiled(VipEmails{});
  REQUIRE(vips.size() == 2);
  CHECK(vips[0] == parse_json(R"({"mail":"dave@x","years":41})"));
  CHECK(vips[1] == parse_json(R"({"mail":"anna@x","years":30})"));

  // One pooled connection: the statement is prepared on it once and reused for new values.
  const auto store = db.builder().max_connections(1).build();
  for (const char* s : {"active", "inactive", "banned"}) {
    CHECK(store.docs().execute_compiled(MembersByStatus(s)).size() ==
          docs.query<Member>().filter(Predicate::eq("status", s)).count());
  }
}
