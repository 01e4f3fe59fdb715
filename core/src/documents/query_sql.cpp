#include "documents/query_sql.hpp"

#include "db/sql.hpp"
#include "documents/document_path.hpp"
#include "documents/document_sql.hpp"

#include <rillflow/error.hpp>

#include <algorithm>

namespace rillflow {
namespace docs {

namespace {

class Builder {
 public:
  /// A new placeholder bound to `value`.
  std::string bind(std::string value) {
    params_.push_back(std::move(value));
    return "$" + std::to_string(params_.size());
  }
  std::string bind_json(const Json& value) {
    return bind(boost::json::serialize(value)) + "::jsonb";
  }
  /// The document's value at `path`, as jsonb.
  std::string field(const std::string& path) {
    return "(d.doc #> " + bind(path_parameter(path)) + "::text[])";
  }
  /// The document's value at `path`, as text.
  std::string field_text(const std::string& path) {
    return "(d.doc #>> " + bind(path_parameter(path)) + "::text[])";
  }
  std::vector<std::string> take() { return std::move(params_); }

 private:
  std::vector<std::string> params_;
};

const Json& value_at(const Predicate& p, std::size_t i) {
  if (p.values().size() <= i) {
    throw Error(ErrorCode::kInvalidArgument, "predicate on '" + p.path() + "' lacks a value");
  }
  return p.values()[i];
}

bool is_scalar(const Json& v) {
  return !v.is_object() && !v.is_array();
}

std::string comparison(Builder& b, const Predicate& p, const char* op) {
  const auto lhs = b.field(p.path());
  const auto rhs = b.bind_json(value_at(p, 0));
  // Same JSON type only: jsonb orders all strings below all numbers, which would otherwise
  // let lt(age, 30) match "abc".
  return "(jsonb_typeof(" + lhs + ") = jsonb_typeof(" + rhs + ") and " + lhs + " " + op + " " +
         rhs + ")";
}

std::string compile(Builder& b, const Predicate& p);

std::string combine(Builder& b, const Predicate& p, const char* glue, const char* empty) {
  if (p.children().empty()) return empty;
  std::string out = "(";
  for (std::size_t i = 0; i < p.children().size(); ++i) {
    if (i > 0) out += glue;
    out += compile(b, p.children()[i]);
  }
  return out + ")";
}

std::string compile(Builder& b, const Predicate& p) {
  using Op = Predicate::Op;
  switch (p.op()) {
    case Op::kEq: {
      const auto segments = parse_path(p.path());
      const bool keys_only =
          !segments.empty() && std::none_of(segments.begin(), segments.end(),
                                            [](const PathSegment& s) { return s.index; });
      // Scalar equality on a key path is containment of {"a":{"b":v}}: the same rows, and the
      // GIN index on doc serves it.
      if (keys_only && is_scalar(value_at(p, 0))) {
        return "(d.doc @> " + b.bind_json(nest(segments, value_at(p, 0))) + ")";
      }
      return "(" + b.field(p.path()) + " = " + b.bind_json(value_at(p, 0)) + ")";
    }
    case Op::kNe:
      return "(" + b.field(p.path()) + " <> " + b.bind_json(value_at(p, 0)) + ")";
    case Op::kLt:
      return comparison(b, p, "<");
    case Op::kLe:
      return comparison(b, p, "<=");
    case Op::kGt:
      return comparison(b, p, ">");
    case Op::kGe:
      return comparison(b, p, ">=");
    case Op::kBetween: {
      const auto lhs = b.field(p.path());
      const auto low = b.bind_json(value_at(p, 0));
      const auto high = b.bind_json(value_at(p, 1));
      return "(jsonb_typeof(" + lhs + ") = jsonb_typeof(" + low + ") and jsonb_typeof(" + lhs +
             ") = jsonb_typeof(" + high + ") and " + lhs + " between " + low + " and " + high + ")";
    }
    case Op::kIn: {
      boost::json::array all(p.values().begin(), p.values().end());
      return "(" + b.field(p.path()) + " in (select jsonb_array_elements(" + b.bind_json(all) +
             ")))";
    }
    case Op::kContains:
      return "(" + b.field(p.path()) + " @> " + b.bind_json(value_at(p, 0)) + ")";
    case Op::kExists:
      return "(" + b.field(p.path()) + " is not null)";
    case Op::kLike:
    case Op::kIlike: {
      const auto& pattern = value_at(p, 0);
      if (!pattern.is_string()) throw Error(ErrorCode::kInvalidArgument, "a pattern is text");
      return "(" + b.field_text(p.path()) + (p.op() == Op::kLike ? " like " : " ilike ") +
             b.bind(std::string(pattern.as_string())) + "::text)";
    }
    case Op::kMatch: {
      const auto& query = value_at(p, 0);
      const auto& config = value_at(p, 1);
      if (!query.is_string() || !config.is_string()) {
        throw Error(ErrorCode::kInvalidArgument, "a text search query and config are text");
      }
      const auto field = b.field_text(p.path());
      const auto cfg = b.bind(std::string(config.as_string())) + "::regconfig";
      return "(to_tsvector(" + cfg + ", coalesce(" + field + ", '')) @@ websearch_to_tsquery(" +
             cfg + ", " + b.bind(std::string(query.as_string())) + "::text))";
    }
    case Op::kAnd:
      return combine(b, p, " and ", "true");
    case Op::kOr:
      return combine(b, p, " or ", "false");
    case Op::kNot:
      if (p.children().size() != 1) {
        throw Error(ErrorCode::kInvalidArgument, "not_ takes exactly one predicate");
      }
      // A missing field makes a comparison unknown (NULL); under NOT it counts as false so
      // not_(x) is exactly the documents x does not match.
      return "(not coalesce(" + compile(b, p.children()[0]) + ", false))";
  }
  throw Error(ErrorCode::kInternal, "unknown predicate operator");
}

// "from {schema}.docs d where ..." shared by select and count.
std::string from_where(Builder& b, const detail::StoreState& state, const DocumentQueryContext& q) {
  validate_collection(q.collection());
  std::string sql =
      state.sql(" from {schema}.docs d where d.collection = ") + b.bind(q.collection());
  switch (q.deleted()) {
    case DeletedFilter::kLiveOnly:
      sql += " and d.deleted_at is null";
      break;
    case DeletedFilter::kOnlyDeleted:
      sql += " and d.deleted_at is not null";
      break;
    case DeletedFilter::kIncludeDeleted:
      break;
  }
  for (const auto& f : q.filters()) sql += " and " + compile(b, f);
  return sql;
}

}  // namespace

CompiledSql compile_select(const detail::StoreState& state, const DocumentQueryContext& q,
                           docs_detail::Fetch mode) {
  Builder b;
  std::string sql = "select ";
  if (q.selection().empty()) {
    sql += "d.doc::text";
  } else {
    sql += "jsonb_build_object(";
    for (std::size_t i = 0; i < q.selection().size(); ++i) {
      const auto& s = q.selection()[i];
      if (i > 0) sql += ", ";
      sql += b.bind(s.alias) + "::text, " + b.field(s.path);
    }
    sql += ")::text";
  }
  sql += from_where(b, state, q);
  sql += " order by ";
  for (const auto& key : q.order()) {
    sql += b.field(key.path) +
           (key.direction == SortDirection::kDesc ? " desc nulls last, " : " asc nulls last, ");
  }
  sql += "d.id";

  std::optional<std::int64_t> limit = q.limit_value();
  const auto cap = [&](std::int64_t n) { limit = limit ? std::min(*limit, n) : n; };
  if (mode == docs_detail::Fetch::kFirst) cap(1);
  if (mode == docs_detail::Fetch::kUpToTwo) cap(2);
  if (limit) {
    if (*limit < 0) throw Error(ErrorCode::kInvalidArgument, "a query limit must be >= 0");
    sql += " limit " + b.bind(std::to_string(*limit)) + "::bigint";
  }
  if (const auto& offset = q.offset_value()) {
    if (*offset < 0) throw Error(ErrorCode::kInvalidArgument, "a query offset must be >= 0");
    sql += " offset " + b.bind(std::to_string(*offset)) + "::bigint";
  }
  return {std::move(sql), b.take()};
}

CompiledSql compile_count(const detail::StoreState& state, const DocumentQueryContext& q) {
  Builder b;
  std::string sql = "select count(*)" + from_where(b, state, q);
  return {std::move(sql), b.take()};
}

}  // namespace docs

namespace docs_detail {

std::vector<Json> fetch(const detail::StoreState& state, const DocumentQueryContext& query,
                        Fetch mode, bool prepared) {
  const auto compiled = docs::compile_select(state, query, mode);
  return db::without_transaction(state.connections(), [&](auto& txn, db::Connection& conn) {
    const auto params = pqxx::prepare::make_dynamic_params(compiled.params);
    const auto rows = prepared ? db::exec(txn, conn, compiled.sql, params)
                               : txn.exec_params(compiled.sql, params);
    std::vector<Json> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(boost::json::parse(std::string_view(row[0].c_str(), row[0].size())));
    }
    return out;
  });
}

std::int64_t count(const detail::StoreState& state, const DocumentQueryContext& query) {
  const auto compiled = docs::compile_count(state, query);
  return db::without_transaction(state.connections(), [&](auto& txn, db::Connection&) {
    return txn.exec_params(compiled.sql, pqxx::prepare::make_dynamic_params(compiled.params))[0][0]
        .template as<std::int64_t>();
  });
}

void throw_not_exactly_one(const DocumentQueryContext& query, std::size_t found) {
  if (found == 0) throw DocNotFound(query.collection(), "");
  throw Error(ErrorCode::kInvalidArgument,
              "query on collection " + query.collection() + " matched more than one document");
}

}  // namespace docs_detail
}  // namespace rillflow
