// Field paths and query compilation, without a database.
#include <rillflow/rillflow.hpp>

#include "documents/document_path.hpp"
#include "documents/query_sql.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

using namespace rillflow;

namespace unit_docs {
struct Address {
  std::string city;
};
BOOST_DESCRIBE_STRUCT(Address, (), (city))
struct Person {
  std::string name;
  int age = 7;
  Address address;
  std::vector<int> scores;
};
BOOST_DESCRIBE_STRUCT(Person, (), (name, age, address, scores))
}  // namespace unit_docs

namespace {
std::vector<std::string> texts(std::string_view path) {
  std::vector<std::string> out;
  for (const auto& s : docs::parse_path(path)) out.push_back(s.text + (s.index ? "#" : ""));
  return out;
}
}  // namespace

TEST_CASE("paths_parse_keys_indexes_and_escapes") {
  using V = std::vector<std::string>;
  CHECK(texts("").empty());
  CHECK(texts("status") == V{"status"});
  CHECK(texts("a.b[0].c") == V{"a", "b", "0#", "c"});
  CHECK(texts("m[1][2]") == V{"m", "1#", "2#"});
  CHECK(texts("[3].x") == V{"3#", "x"});
  CHECK(texts(R"(a\.b.c\[d\\)") == V{"a.b", R"(c[d\)"});
  CHECK(texts(R"(x'); drop table docs; --)") == V{"x'); drop table docs; --"});
  for (const char* bad :
       {".", "a.", ".a", "a..b", "a[", "a[x]", "a[-1]", "a[]", "a]b", "a[0]b", "a\\", "a.[0]"}) {
    CHECK_THROWS_AS(docs::parse_path(bad), Error);
  }
  CHECK_THROWS_AS(docs::parse_path(std::string("a\0b", 3)), Error);
}

TEST_CASE("text_array_literals_escape_quotes_and_backslashes") {
  CHECK(docs::text_array_literal({}) == "{}");
  CHECK(docs::text_array_literal({"a", "b c"}) == R"({"a","b c"})");
  CHECK(docs::text_array_literal({R"(q"},{x\)"}) == R"({"q\"},{x\\"})");
  CHECK(docs::path_parameter("a.b[0]") == R"({"a","b","0"})");
}

TEST_CASE("set_path_keeps_siblings_and_creates_parents") {
  Json doc = parse_json(R"({"p":{"n":"A","age":3},"l":[1]})");
  docs::set_path(doc, "p.n", Json("B"));
  docs::set_path(doc, "q.r.s", Json(true));
  docs::set_path(doc, "l[1]", Json(2));
  docs::set_path(doc, "m[0].k", Json(1));
  CHECK(doc == parse_json(R"({"p":{"n":"B","age":3},"l":[1,2],"q":{"r":{"s":true}},
                               "m":[{"k":1}]})"));
  CHECK_THROWS_AS(docs::set_path(doc, "p.n.x", Json(1)), Error);  // "B" is a string
  CHECK_THROWS_AS(docs::set_path(doc, "l[5]", Json(1)), Error);
  Json whole = Json(1);
  docs::set_path(whole, "", Json(2));
  CHECK(whole == 2);
}

TEST_CASE("compiled_sql_depends_only_on_the_query_shape") {
  detail::StoreState state;
  state.quoted_schema = "\"app\"";
  const std::string evil = R"(x'); drop table docs; -- ")";
  auto make = [&](const std::string& value, const std::string& path) {
    DocumentQueryContext q("c" + value);
    q.filter(Predicate::eq(path, value) || Predicate::gt(path, value))
        .filter(Predicate::in(path, {Json(value)}))
        .filter(!Predicate::like(path, value))
        .order_by(path, SortDirection::kDesc)
        .select_fields({{value, path}})
        .page(2, 10);
    return docs::compile_select(state, q, docs_detail::Fetch::kAll);
  };
  const auto plain = make("active", "status");
  const auto hostile = make(evil, evil);
  CHECK(plain.sql == hostile.sql);
  CHECK(plain.params.size() == hostile.params.size());
  CHECK(hostile.sql.find("drop") == std::string::npos);
  CHECK(hostile.sql.find('\'') == std::string::npos);  // no literal of any kind
  CHECK(plain.sql.find("\"app\".docs") != std::string::npos);
  // Paging is bound too: the limit and offset are parameters.
  CHECK(std::find(plain.params.begin(), plain.params.end(), "10") != plain.params.end());
  const auto first =
      docs::compile_select(state, DocumentQueryContext("c").limit(5), docs_detail::Fetch::kFirst);
  CHECK(first.sql.find(" limit ") == first.sql.rfind(" limit "));  // exactly one LIMIT
  CHECK(first.params.back() == "1");
}

TEST_CASE("described_structs_convert_leniently_so_stored_documents_survive_type_changes") {
  using unit_docs::Person;
  const auto p = json_to<Person>(
      parse_json(R"({"name":"Ada","address":{"city":"Oslo","zip":"0150"},"extra":1})"));
  CHECK(p.name == "Ada");
  CHECK(p.age == 7);  // missing: the member's default
  CHECK(p.address.city == "Oslo");
  CHECK(p.scores.empty());
  CHECK(json_from(p).at("address").at("city") == "Oslo");
  try {
    json_to<Person>(parse_json(R"({"name": 5})"));
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
    CHECK(std::string(e.what()).find("std::") != std::string::npos);  // demangled type name
  }
  CHECK_THROWS_AS(json_to<Person>(Json(3)), Error);
}
