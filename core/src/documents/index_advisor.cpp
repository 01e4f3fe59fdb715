#include <rillflow/documents/index_advisor.hpp>
#include <rillflow/error.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include "db/sql.hpp"
#include "documents/document_path.hpp"
#include "documents/document_sql.hpp"
#include "schema/migrations.hpp"

namespace rillflow {

namespace {

// A standard SQL string literal ('' doubles a quote; backslashes are literal with
// standard_conforming_strings, the default since PostgreSQL 9.1).
std::string sql_literal(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// docs_<readable part of the field>_<hash of the whole request>_idx, at most 63 bytes.
std::string index_name(const IndexRequest& r) {
  std::string slug;
  for (const char c : r.field) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (ok)
      slug += c;
    else if (c >= 'A' && c <= 'Z')
      slug += static_cast<char>(c - 'A' + 'a');
    else if (!slug.empty() && slug.back() != '_')
      slug += '_';
    if (slug.size() >= 30) break;
  }
  const auto hash =
      schema::checksum(r.field + '\x1f' + r.collection + (r.gin ? "\x1fgin" : "\x1f")).substr(0, 8);
  return "docs_" + slug + (slug.empty() || slug.back() == '_' ? "" : "_") + hash +
         (r.gin ? "_gin_idx" : "_idx");
}

}  // namespace

std::string IndexAdvisor::ddl(std::string_view schema, const IndexRequest& r) {
  validate_identifier(std::string(schema), "schema name");
  if (r.field.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "index advice needs a field path");
  }
  const std::string field = "(doc #> " + sql_literal(docs::path_parameter(r.field)) + "::text[])";
  if (!r.collection.empty()) docs::validate_collection(r.collection);
  std::string out = "create index if not exists " + db::quote_ident(index_name(r)) + " on " +
                    db::quote_ident(schema) + ".docs";
  if (r.gin) {
    out += " using gin (" + field + " jsonb_path_ops)";
  } else if (r.collection.empty()) {
    out += " (collection, " + field + ")";
  } else {
    out += " (" + field + ")";
  }
  if (!r.collection.empty()) out += " where collection = " + sql_literal(r.collection);
  return out + ";\n";
}

}  // namespace rillflow
