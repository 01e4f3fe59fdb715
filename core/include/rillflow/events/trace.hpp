#pragma once
// Traces: the events that share one correlation id, linked by causation id, across streams;
// as JSON and as a Mermaid sequence diagram (the seed's "tracing breadcrumbs with Mermaid
// export"). EventStore::trace() loads one.

#include <rillflow/events/event.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rillflow {

/// The id other events name as their causation_id: the event's "event_id" header when it holds
/// a UUID, else one derived from (stream_id, stream_seq) — the stream id's first 8 bytes and the
/// sequence number mixed into the last 8 by a bijection, so distinct within a stream and, across
/// streams, as unlikely to collide as two random 64-bit values. The derived form is not an
/// RFC 4122 version; PostgreSQL's uuid type stores it. A handler reacting to `e` appends with
/// `causation_id(event_id(e))` and `correlation_id(*e.correlation_id)`.
Uuid event_id(const EventEnvelope& event);

/// One event of a trace.
struct TraceEvent {
  EventEnvelope event;
  Uuid id{};                                ///< event_id(event)
  std::optional<std::string> stream_alias;  ///< an alias of its stream (the smallest), if any
  /// global_seq of the trace event whose id is this event's causation_id; empty for a root
  /// (no causation id, or one naming something outside the trace, such as a command).
  std::optional<std::int64_t> caused_by;
};

/// The events of one correlation id in global_seq order.
struct Trace {
  Uuid correlation_id{};
  std::vector<TraceEvent> events;
};

/// {"correlation_id", "events": [{"global_seq", "id", "stream_id", "stream_alias",
/// "stream_seq", "type", "causation_id", "caused_by", "created_at"}]}.
Json to_json(const Trace& trace);

/// A Mermaid sequence diagram: one participant per stream (labelled by alias, else the stream
/// id), one message per event (labelled "#global_seq type"), drawn from the stream of its cause
/// to its own stream (a root event: from its own stream to itself). Every label is escaped
/// (mermaid_label), so hostile event types or aliases cannot change the diagram's structure.
std::string to_mermaid(const Trace& trace);

/// Text safe as a Mermaid label: ASCII letters, digits, space and `_ . , - / ( ) @` pass;
/// every other character (also UTF-8, decoded; invalid bytes become U+FFFD) becomes an entity
/// code `#NNN;`, which Mermaid renders as that character. Longer than `max_chars` characters:
/// cut, with "..." appended.
std::string mermaid_label(std::string_view text, std::size_t max_chars = 80);

}  // namespace rillflow
