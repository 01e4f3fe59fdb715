#pragma once
// Pieces shared by the event store's statements (private to rillflow::core).

#include "db/pool.hpp"
#include "store_state.hpp"

#include <rillflow/events/event.hpp>

#include <pqxx/pqxx>

#include <optional>
#include <vector>

namespace rillflow::events {

/// The column list every envelope query selects, in the order envelope_from_row reads.
inline constexpr const char* kEnvelopeColumns =
    "e.global_seq, e.stream_id::text, e.stream_seq, e.event_type, e.body::text, e.headers::text, "
    "e.causation_id::text, e.correlation_id::text, "
    "(date_part('epoch', e.created_at) * 1000000)::bigint";  // float8: exact to the microsecond

EventEnvelope envelope_from_row(const pqxx::row& row);
std::vector<EventEnvelope> envelopes_from(const pqxx::result& result);

/// Events of one stream with stream_seq >= from_version, in order, read by the caller's
/// transaction (so a session or an aggregate commit sees its own appends).
std::vector<EventEnvelope> read_stream_in(pqxx::transaction_base& txn, db::Connection& conn,
                                          const detail::StoreState& state, const Uuid& stream_id,
                                          std::int64_t from_version,
                                          std::optional<std::int64_t> limit);

/// Appends inside the caller's transaction (sessions reuse this). Throws VersionConflict,
/// IdempotencyConflict, or rillflow::Error (kInvalidArgument) for bad input.
AppendResult append_in(pqxx::work& txn, db::Connection& conn, const detail::StoreState& state,
                       const Uuid& stream_id, const Expected& expected,
                       const std::vector<Event>& events, const AppendOptions& options,
                       bool advisory_lock);

}  // namespace rillflow::events
