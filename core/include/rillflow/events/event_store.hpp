#pragma once

#include <rillflow/events/event.hpp>
#include <rillflow/fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace rillflow {

class AppendBuilder;
struct Trace;

/// Which part of a stream to read.
struct StreamRead {
  std::int64_t from_version = 1;  ///< first stream_seq to return
  std::optional<std::size_t> limit;
};

/// One page of the global feed.
struct FeedBatch {
  std::vector<EventEnvelope> events;    ///< in delivery order
  std::vector<FeedPosition> positions;  ///< positions[i]: the position just after events[i]
  FeedPosition next;                    ///< pass to the next read_feed call (and persist it)
  bool caught_up = false;               ///< true when no committed event is left to read now
};

/// Appends and reads events. Obtained from Store::events(); cheap to copy; thread-safe.
///
/// Appends lock the stream row before drawing sequence numbers, so concurrent appends to one
/// stream serialize; a wrong expectation throws VersionConflict. Database failures throw
/// rillflow::Error (ConnectionError, CommitOutcomeUnknown, kDatabase).
class EventStore {
 public:
  explicit EventStore(std::shared_ptr<const detail::StoreState> state, bool advisory_locks = false);

  /// A copy whose appends also take a transaction-scoped advisory lock on the stream id.
  EventStore with_advisory_locks() const;

  AppendResult append_stream(const Uuid& stream_id, Expected expected,
                             std::vector<Event> events) const;
  AppendResult append_with(const Uuid& stream_id, Expected expected, std::vector<Event> events,
                           const AppendOptions& options) const;
  /// Fluent append: builder(id).headers(h).idempotency_key(k).push(e).send().
  AppendBuilder builder(const Uuid& stream_id) const;

  /// Events of one stream in stream_seq order.
  std::vector<EventEnvelope> read_stream(const Uuid& stream_id, StreamRead range = {}) const;
  /// The stream's version (its last stream_seq), or nullopt when it has no events.
  std::optional<std::int64_t> stream_version(const Uuid& stream_id) const;

  /// Up to `limit` committed events after `position`, never skipping one whatever the commit
  /// order of concurrent appenders (see docs/ordering.md). Creates a tick when there is news.
  FeedBatch read_feed(FeedPosition position, std::size_t limit) const;
  /// The position after every event committed so far: start here to see only new events.
  FeedPosition feed_end() const;
  /// The highest global_seq committed so far (0 when empty).
  std::int64_t head() const;

  /// The events whose correlation_id is `correlation_id`, in global_seq order, linked by
  /// causation id (see events/trace.hpp), at most `limit` of them. Empty when there are none.
  /// Reads without an index on correlation_id (a scan of the events table): a developer's and
  /// an operator's tool, not a hot path.
  Trace trace(const Uuid& correlation_id, std::size_t limit = 10000) const;

 private:
  std::shared_ptr<const detail::StoreState> state_;
  bool advisory_locks_;
};

/// Collects one append; send() performs it. Not thread-safe (a builder belongs to one caller).
class AppendBuilder {
 public:
  AppendBuilder(EventStore store, const Uuid& stream_id)
      : store_(std::move(store)), stream_id_(stream_id) {}

  AppendBuilder& expected(Expected e) {
    expected_ = e;
    return *this;
  }
  AppendBuilder& headers(Json h) {
    options_.headers = std::move(h);
    return *this;
  }
  AppendBuilder& causation_id(const Uuid& id) {
    options_.causation_id = id;
    return *this;
  }
  AppendBuilder& correlation_id(const Uuid& id) {
    options_.correlation_id = id;
    return *this;
  }
  AppendBuilder& idempotency_key(std::string key) {
    options_.idempotency_key = std::move(key);
    return *this;
  }
  AppendBuilder& push(Event e) {
    events_.push_back(std::move(e));
    return *this;
  }
  AppendResult send() const { return store_.append_with(stream_id_, expected_, events_, options_); }

 private:
  EventStore store_;
  Uuid stream_id_;
  Expected expected_ = Expected::any();
  AppendOptions options_;
  std::vector<Event> events_;
};

inline AppendBuilder EventStore::builder(const Uuid& stream_id) const {
  return AppendBuilder(*this, stream_id);
}

}  // namespace rillflow
