#pragma once
// A unit of work over documents, events and aggregates, saved in one transaction.

#include <rillflow/aggregates/aggregate_repository.hpp>
#include <rillflow/documents/document_collection.hpp>
#include <rillflow/events/event.hpp>
#include <rillflow/fwd.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rillflow {

template <Aggregate A>
class SessionAggregates;

/// Who a session works for. Set it before the session's first load or staged write; it cannot
/// change afterwards (Error kInvalidArgument).
struct SessionContext {
  /// The tenant whose schema (tenant_<name>) the session reads and writes. Required when the
  /// store uses TenantStrategy::kSchemaPerTenant ("tenant required" otherwise), refused by a
  /// single-tenant store; preset (and fixed) on a session of Store::tenant(name). An
  /// unprovisioned tenant fails the first load or save_changes() with TenantNotFound before
  /// anything is written.
  std::optional<std::string> tenant;
};

/// A unit of work, from Store::session(). Loads go through an identity map (a document is read
/// from the database once per session); store/remove, enqueue_event and aggregate commits are
/// staged; save_changes() applies all of them in ONE transaction:
///   - every document the session loaded is written only if it is still at the version it was
///     loaded at (DocVersionConflict otherwise; a document loaded as absent must still be
///     absent); documents stored without loading are upserted;
///   - events are appended through the event store's own append path (store-level
///     session_defaults supply headers / causation / correlation; session_advisory_locks adds
///     an advisory lock per stream);
///   - aggregate commits validate and snapshot as AggregateRepository does.
/// If anything fails nothing is applied, the exception propagates, and the staged work is kept
/// to inspect or retry. After a successful save the identity map holds the new versions.
///
/// Not thread-safe: one session belongs to one caller. Destroying a session with staged work
/// discards it.
class DocumentSession {
 public:
  explicit DocumentSession(std::shared_ptr<const detail::StoreState> state);

  /// The session's context (its tenant); `session.context().tenant = "acme";`.
  SessionContext& context() noexcept { return context_; }
  const SessionContext& context() const noexcept { return context_; }

  /// The document as this session sees it: staged changes first, then the identity map, then
  /// the database (once). nullopt when missing, soft-deleted or staged for removal.
  template <Document T>
  std::optional<T> load(const Uuid& id) {
    auto json = load(collection_of<T>(), id);
    if (!json) return std::nullopt;
    return json_to<T>(*json);
  }
  /// Stages a write of the whole document.
  template <Document T>
  void store(const Uuid& id, const T& doc) {
    store(collection_of<T>(), id, json_from(doc));
  }
  /// Stages a delete (`delete` is a C++ keyword).
  template <Document T>
  void remove(const Uuid& id) {
    remove(collection_of<T>(), id);
  }

  std::optional<Json> load(std::string_view collection, const Uuid& id);
  void store(std::string_view collection, const Uuid& id, Json doc);
  void remove(std::string_view collection, const Uuid& id);

  /// Stages an append of one event.
  void enqueue_event(const Uuid& stream_id, Expected expected, Event event);
  /// Stages an append of several events (one append, one expectation).
  void enqueue_events(const Uuid& stream_id, Expected expected, std::vector<Event> events);

  /// Aggregate commits that join this session's transaction.
  template <Aggregate A>
  SessionAggregates<A> aggregates(const AggregateRepository<A>& repo) {
    return SessionAggregates<A>(*this, repo);
  }
  /// Stages an aggregate commit (what SessionAggregates calls).
  void stage_commit(aggregates_detail::CommitRequest request);

  /// Applies everything staged in one transaction; returns the appends in staging order.
  std::vector<AppendResult> save_changes();
  /// Drops the staged work (the identity map stays).
  void discard_changes();

  bool has_changes() const noexcept { return !documents_.empty() || !commits_.empty(); }
  std::size_t pending_documents() const noexcept { return documents_.size(); }
  std::size_t pending_appends() const noexcept { return commits_.size(); }
  /// The version this session loaded (or last saved) the document at; 0 = known absent;
  /// nullopt = not tracked.
  std::optional<std::int64_t> tracked_version(std::string_view collection, const Uuid& id) const;

 private:
  using Key = std::pair<std::string, Uuid>;
  struct Tracked {
    std::optional<Json> doc;   ///< the live document, or nullopt when absent / soft-deleted
    std::int64_t version = 0;  ///< 0: the row does not exist
  };
  struct Staged {
    std::optional<Json> doc;  ///< nullopt: delete
  };

  /// Fixes the session's tenant at its first use; refuses a later change.
  void bind_tenant();
  /// The state of the schema the session works in (resolved once; TenantNotFound).
  const detail::StoreState& target();

  std::shared_ptr<const detail::StoreState> state_;
  SessionContext context_;
  bool bound_ = false;
  std::optional<std::string> bound_tenant_;
  std::shared_ptr<const detail::StoreState> target_;
  std::map<Key, Tracked> identity_;
  std::map<Key, Staged> documents_;
  std::vector<aggregates_detail::CommitRequest> commits_;
};

/// Aggregate commits staged into a session: session.aggregates(repo).commit(...).
template <Aggregate A>
class SessionAggregates {
 public:
  SessionAggregates(DocumentSession& session, AggregateRepository<A> repo)
      : session_(&session), repo_(std::move(repo)) {}

  /// Stages an append validated as AggregateRepository::commit does.
  void commit(const Uuid& id, Expected expected, std::vector<Event> events) {
    session_->stage_commit(repo_.request(id, expected, std::move(events), {}, 0));
  }
  /// Stages AggregateRepository::commit_and_snapshot.
  void commit_and_snapshot(const Uuid& id, const A& agg, std::vector<Event> events,
                           std::int64_t every_n) requires SnapshotAggregate<A> {
    session_->stage_commit(repo_.request(id,
                                         Expected::exact(static_cast<std::int64_t>(agg.version())),
                                         std::move(events), {}, every_n));
  }

 private:
  DocumentSession* session_;
  AggregateRepository<A> repo_;
};

}  // namespace rillflow
