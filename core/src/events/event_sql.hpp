#pragma once
// Pieces shared by the event store's statements (private to rillflow::core).

#include "db/pool.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>

#include <pqxx/pqxx>

#include <vector>

namespace rillflow::events {

/// The column list every envelope query selects, in the order envelope_from_row reads.
inline constexpr const char* kEnvelopeColumns =
    "e.global_seq, e.stream_id::text, e.stream_seq, e.event_type, e.body::text, e.headers::text, "
    "e.causation_id::text, e.correlation_id::text, "
    "(date_part('epoch', e.created_at) * 1000000)::bigint";  // float8: exact to the microsecond

EventEnvelope envelope_from_row(const pqxx::row& row);
std::vector<EventEnvelope> envelopes_from(const pqxx::result& result);

/// Appends inside the caller's transaction (sessions reuse this). Throws VersionConflict,
/// IdempotencyConflict, or rillflow::Error (kInvalidArgument) for bad input.
AppendResult append_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const Uuid& stream_id, const Expected& expected,
                       const std::vector<Event>& events, const AppendOptions& options,
                       bool advisory_lock);

}  // namespace rillflow::events
