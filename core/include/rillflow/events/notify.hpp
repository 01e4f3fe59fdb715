#pragma once
// The wake-up protocol between appenders and feed consumers. Every committed append is followed
// by a NOTIFY on the store's channel (StoreBuilder::notify_channel; empty: none), delivered after
// its commit: in the append's own transaction, or, under a stream of commits, one sent by the
// store for all the appends of the last millisecond. The payload is the store's schema name,
// unquoted, so one listener on a channel shared by several schemas wakes only the consumers of
// that schema. Consumers always poll too: a NOTIFY is a hint, never the only way to see an event.

#include <string>
#include <string_view>

namespace rillflow::notify {

/// The channel used unless configured otherwise.
inline constexpr std::string_view kDefaultChannel = "rillflow_events";

/// The payload an append to `schema` sends.
inline std::string payload_for(std::string_view schema) {
  return std::string(schema);
}

/// Whether a notification's payload concerns the consumers of `schema`.
inline bool concerns(std::string_view payload, std::string_view schema) {
  return payload == schema;
}

}  // namespace rillflow::notify
