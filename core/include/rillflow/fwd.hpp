#pragma once
// Forward declarations of Rillflow's public types.

namespace rillflow {
class Store;
class StoreBuilder;
class EventStore;
class AppendBuilder;
class SchemaManager;
class EmbeddedPostgres;
class Error;
class DocumentStore;
class DocumentSession;
class DocumentQueryContext;
class Predicate;
struct Event;
struct EventEnvelope;
struct AppendOptions;
struct AppendResult;
struct FeedPosition;
namespace detail {
struct StoreState;
struct StoreAccess;
}  // namespace detail
}  // namespace rillflow
