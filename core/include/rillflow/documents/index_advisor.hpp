#pragma once
// DDL for workload-specific indexes that the query DSL's generated SQL can use.

#include <string>
#include <string_view>

namespace rillflow {

/// What to index: a field path ("email", "profile.city", "tags"), optionally only for one
/// collection, as a btree (comparisons, ranges, in, order_by) or a GIN (contains).
struct IndexRequest {
  std::string field;
  std::string collection;  ///< empty: every collection (the collection leads the btree key)
  bool gin = false;
};

/// Prints CREATE INDEX statements that run as printed. The indexed expression is exactly the
/// one the DSL generates (`doc #> '{path}'::text[]`), so the planner matches it when it plans a
/// query with the path's value (custom plans; see docs/indexes.md). Names and paths are
/// quoted as SQL literals and identifiers here, since DDL cannot take parameters.
class IndexAdvisor {
 public:
  /// One statement ending in ";\n". Throws Error (kInvalidArgument) for an invalid schema
  /// name, field path or collection.
  static std::string ddl(std::string_view schema, const IndexRequest& request);
};

}  // namespace rillflow
