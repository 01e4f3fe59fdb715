#pragma once
// A unit of work: one named thing a runtime leases, checkpoints and retries, of some kind
// ("projection" today; subscription partitions and snapshotters use their own kinds).
//
// Where its state lives. Every kind shares one table, {schema}.work_units, keyed by (kind, name):
// lease (lease_owner, lease_expires_at, lease_epoch), feed checkpoint (from_tick, to_tick,
// after_seq, last_global_seq), retry state (attempts, backoff_until, last_error) and operator
// flags (paused, stopped). Parked events (the DLQ) share {schema}.parked, keyed by (kind, name,
// id). One table rather than one per kind because the lease, the checkpoint and the retry state
// of a unit are read together by the acquire and written together by the checkpoint (one
// statement each per batch), tick pruning needs the lowest position of every feed consumer of
// every kind in one place, and a new kind then needs no migration of its own for them.
// Migration 4 moved the projections' rows there; the views {schema}.projections and
// {schema}.projection_dlq keep showing them under the old names.
//
// Rows are created by the runtime (ensure) or by an operator command on a registered unit;
// an admin call on an unknown name writes nothing.

#include <rillflow/runtime/assignment.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace rillflow::runtime {

/// "projection 'orders'", for messages.
inline std::string describe(const UnitKey& key) {
  return key.kind + " '" + key.name + "'";
}

/// The runtime's notion of wall time: retry backoffs are computed and compared with it (leases use
/// the database's clock, which every runtime shares). Injectable so tests need not wait.
using WallClock = std::function<std::chrono::system_clock::time_point()>;
/// Waits (or, in tests, advances a fake clock).
using Sleeper = std::function<void(std::chrono::milliseconds)>;

/// Microseconds since the epoch, as the runtime's statements take times ($n::bigint).
inline std::int64_t to_micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
inline std::chrono::system_clock::time_point from_micros(std::int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

}  // namespace rillflow::runtime
