#pragma once
// Non-template entry points the query templates call (implemented in core/src/docs).

#include <rillflow/documents/document_query_context.hpp>
#include <rillflow/fwd.hpp>
#include <rillflow/json.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace rillflow::docs_detail {

enum class Fetch {
  kAll,      ///< every row the query selects
  kFirst,    ///< at most one row (LIMIT 1 replacing any limit, offset kept)
  kUpToTwo,  ///< at most two rows, to tell "exactly one" from "more than one"
};

/// Runs the query; rows are whole documents or the selected-field objects. `prepared` runs it
/// as a statement prepared once per connection (compiled queries), otherwise unprepared.
std::vector<Json> fetch(const detail::StoreState& state, const DocumentQueryContext& query,
                        Fetch mode, bool prepared);
/// Number of documents the filters match (order and paging ignored).
std::int64_t count(const detail::StoreState& state, const DocumentQueryContext& query);
/// Rows as R (Json passes through; anything else through json_to).
template <class R>
std::vector<R> rows_as(std::vector<Json> rows) {
  if constexpr (std::is_same_v<R, Json>) {
    return rows;
  } else {
    std::vector<R> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(json_to<R>(row));
    return out;
  }
}

/// DocNotFound (none) or Error kInvalidArgument (more than one) for fetch_one/fetch_optional.
[[noreturn]] void throw_not_exactly_one(const DocumentQueryContext& query, std::size_t found);

}  // namespace rillflow::docs_detail
