#pragma once
// Pieces shared by the event store's statements (private to rillflow::core).

#include "db/pool.hpp"
#include "runtime/feed_reader.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>

#include <pqxx/pqxx>

#include <optional>
#include <vector>

namespace rillflow::events {

// The one envelope column list and decoder live in the feed reader.
using runtime::envelope_from_row;
using runtime::envelopes_from;

/// Events of one stream with stream_seq >= from_version, in order, read by the caller's
/// transaction (so a session or an aggregate commit sees its own appends).
std::vector<EventEnvelope> read_stream_in(pqxx::transaction_base& txn, db::Connection& conn,
                                          const detail::StoreState& state, const Uuid& stream_id,
                                          std::int64_t from_version,
                                          std::optional<std::int64_t> limit);

/// Appends inside the caller's transaction (sessions reuse this). Throws VersionConflict,
/// IdempotencyConflict, or rillflow::Error (kInvalidArgument) for bad input. With `notify` the
/// statement also NOTIFYs the store's channel (delivered at commit): what the committer's
/// detail::AppendNotice says.
AppendResult append_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const Uuid& stream_id, const Expected& expected,
                       const std::vector<Event>& events, const AppendOptions& options,
                       bool advisory_lock, bool notify);

}  // namespace rillflow::events
