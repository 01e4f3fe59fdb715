#pragma once
// Compiles a DocumentQueryContext to SQL text plus bound parameters. The text depends only on
// the query's shape (operators, nesting, counts); every path, value and collection is a
// parameter. Private to rillflow::core.

#include "store_state.hpp"

#include <rillflow/documents/detail/query_runner.hpp>

#include <string>
#include <vector>

namespace rillflow::docs {

struct CompiledSql {
  std::string sql;
  std::vector<std::string> params;
};

CompiledSql compile_select(const detail::StoreState& state, const DocumentQueryContext& query,
                           docs_detail::Fetch mode);
CompiledSql compile_count(const detail::StoreState& state, const DocumentQueryContext& query);

}  // namespace rillflow::docs
