// The global feed: batches between snapshot ticks, so no committed event is ever skipped
// (docs/ordering.md explains why and how; runtime/feed_reader.hpp holds the reader).

#include <rillflow/events/event_store.hpp>

#include "db/sql.hpp"
#include "runtime/feed_reader.hpp"

namespace rillflow {

// No daemon ticks for an ad-hoc reader: it is its own ticker.
FeedPosition EventStore::feed_end() const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return FeedPosition{runtime::Ticker(*state_).tick(txn, conn), 0, 0};
  });
}

FeedBatch EventStore::read_feed(FeedPosition position, std::size_t limit) const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    const runtime::Ticker ticker(*state_);
    return runtime::read_batch(txn, conn, *state_, position, limit,
                               [&] { return ticker.tick(txn, conn); });
  });
}

}  // namespace rillflow
