#pragma once
// Aggregate commits inside a caller's transaction (repository and session share it).

#include "db/pool.hpp"
#include "store_state.hpp"

#include <rillflow/aggregates/detail/aggregate_core.hpp>

#include <pqxx/pqxx>

namespace rillflow::aggregates {

/// Appends through events::append_in, then folds / validates / snapshots as the request asks.
/// `defaults` fill the request's missing headers, causation and correlation ids.
AppendResult commit_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const aggregates_detail::CommitRequest& request,
                       const AppendOptions& defaults, bool advisory_lock);

}  // namespace rillflow::aggregates
