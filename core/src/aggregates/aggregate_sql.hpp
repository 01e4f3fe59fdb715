#pragma once
// Aggregate commits inside a caller's transaction (repository and session share it).

#include "db/pool.hpp"
#include "store_state.hpp"

#include <rillflow/aggregates/detail/aggregate_core.hpp>

#include <pqxx/pqxx>

namespace rillflow::aggregates {

/// Appends through events::append_in, then folds / validates / snapshots as the request asks.
/// `defaults` fill the request's missing headers, causation and correlation ids; `notify` as for
/// events::append_in.
AppendResult commit_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const aggregates_detail::CommitRequest& request,
                       const AppendOptions& defaults, bool advisory_lock, bool notify);

/// Stores `body` (the real folded state, JSON text) as the stream's snapshot at `version` unless
/// a snapshot at that version or later exists, and keeps streams.snapshot_version (what the
/// snapshotter's candidate index reads) equal to the stored snapshot's version. Locks the
/// stream's row before the snapshot's, in the order appends do. Returns whether it wrote.
bool write_snapshot(pqxx::transaction_base& txn, db::Connection& conn,
                    const detail::StoreState& state, const Uuid& stream_id, std::int64_t version,
                    const std::string& body);

}  // namespace rillflow::aggregates
