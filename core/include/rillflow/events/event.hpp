#pragma once
// Value types of the event store: what you append, what you read back, and the positions.

#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace rillflow {

/// An event to append: a type name and a JSON body.
struct Event {
  std::string type;
  Json body;

  Event() = default;
  Event(std::string event_type, Json event_body)
      : type(std::move(event_type)), body(std::move(event_body)) {}
  /// Any T that boost::json::value_from converts (maps, vectors, described structs...).
  template <class T>
  requires(!std::is_convertible_v<const T&, Json>)
      Event(std::string event_type, const T& event_body)
      : type(std::move(event_type)), body(boost::json::value_from(event_body)) {}
};

/// The stream version an append expects; checked under the stream's row lock.
class Expected {
 public:
  enum class Kind { kAny, kNoStream, kStreamExists, kExact };

  static Expected any() { return Expected(Kind::kAny, 0); }
  static Expected no_stream() { return Expected(Kind::kNoStream, 0); }
  static Expected stream_exists() { return Expected(Kind::kStreamExists, 0); }
  /// The stream's current version (the stream_seq of its last event) must be `version`.
  static Expected exact(std::int64_t version) { return Expected(Kind::kExact, version); }

  Kind kind() const noexcept { return kind_; }
  std::int64_t version() const noexcept { return version_; }
  /// "any", "no_stream", "stream_exists" or "exact(N)".
  std::string to_string() const;
  bool operator==(const Expected&) const = default;

 private:
  Expected(Kind kind, std::int64_t version) : kind_(kind), version_(version) {}
  Kind kind_;
  std::int64_t version_;
};

/// Metadata stored with every event of one append.
struct AppendOptions {
  std::optional<Json> headers;  ///< a JSON object; absent means {}
  std::optional<Uuid> causation_id;
  std::optional<Uuid> correlation_id;
  /// Per stream, one per append: a retry with the same key and the same events returns the
  /// original AppendResult; the same key with different events is an IdempotencyConflict.
  std::optional<std::string> idempotency_key;
};

/// What an append wrote.
struct AppendResult {
  Uuid stream_id{};
  std::int64_t first_version = 0;  ///< stream_seq of the first event appended
  std::int64_t last_version = 0;   ///< stream_seq of the last event: the stream's new version
  std::int64_t first_global_seq = 0;
  std::int64_t last_global_seq = 0;
  bool replayed = false;  ///< true when an idempotent retry returned the original result
};

/// An event as stored.
struct EventEnvelope {
  std::int64_t global_seq = 0;  ///< unique, increasing in insertion order (not commit order)
  Uuid stream_id{};
  std::int64_t stream_seq = 0;  ///< 1, 2, 3... within the stream, without gaps
  std::string type;
  Json body;
  Json headers;  ///< always a JSON object
  std::optional<Uuid> causation_id;
  std::optional<Uuid> correlation_id;
  std::chrono::system_clock::time_point created_at;
};

/// A reader's position in the global feed. Value-semantic; persist all three fields.
///
/// The feed is cut into batches by ticks (snapshots of which transactions had committed).
/// A position says: everything visible at tick `from_tick` is consumed, and of the batch
/// between `from_tick` and `to_tick` the events up to `after_seq` (global_seq) are consumed.
/// `to_tick == 0` means no batch is pinned yet. The default position is the start of the feed.
struct FeedPosition {
  std::int64_t from_tick = 0;
  std::int64_t to_tick = 0;
  std::int64_t after_seq = 0;
  bool operator==(const FeedPosition&) const = default;
};

/// The envelope as a JSON object (ids as strings, created_at as RFC 3339 UTC).
Json to_json(const EventEnvelope& envelope);
/// A time point as RFC 3339 UTC with microseconds, e.g. "2026-01-02T03:04:05.123456Z".
std::string format_timestamp(std::chrono::system_clock::time_point t);

}  // namespace rillflow
