#include <rillflow/documents/session.hpp>
#include <rillflow/error.hpp>
#include <rillflow/store.hpp>

#include "aggregates/aggregate_sql.hpp"
#include "db/sql.hpp"
#include "documents/document_sql.hpp"
#include "tenants/tenant_state.hpp"

#include <algorithm>

namespace rillflow {

DocumentSession::DocumentSession(std::shared_ptr<const detail::StoreState> state)
    : state_(std::move(state)) {
  context_.tenant = state_->tenant;
}

void DocumentSession::bind_tenant() {
  if (!bound_) {
    bound_tenant_ = context_.tenant;
    bound_ = true;
  } else if (context_.tenant != bound_tenant_) {
    throw Error(ErrorCode::kInvalidArgument,
                "a session's tenant cannot change once it has loaded or staged work (it works "
                "for " +
                    (bound_tenant_ ? "tenant '" + *bound_tenant_ + "'" : std::string("no tenant")) +
                    "); use a new session");
  }
}

const detail::StoreState& DocumentSession::target() {
  bind_tenant();
  if (!target_) target_ = detail::route_session(state_, bound_tenant_);
  return *target_;
}

DocumentSession Store::session() const {
  return DocumentSession(state_);
}

std::optional<Json> DocumentSession::load(std::string_view collection, const Uuid& id) {
  docs::validate_collection(collection);
  Key key{std::string(collection), id};
  if (const auto staged = documents_.find(key); staged != documents_.end()) {
    return staged->second.doc;
  }
  auto tracked = identity_.find(key);
  if (tracked == identity_.end()) {
    target();
    const auto row = DocumentStore(target_).get_any(collection, id);
    Tracked t;
    if (row) {
      t.version = row->version;
      if (!row->deleted) t.doc = row->doc;
    }
    tracked = identity_.emplace(std::move(key), std::move(t)).first;
  }
  return tracked->second.doc;
}

void DocumentSession::store(std::string_view collection, const Uuid& id, Json doc) {
  docs::validate_collection(collection);
  bind_tenant();
  documents_[Key{std::string(collection), id}] = Staged{std::move(doc)};
}

void DocumentSession::remove(std::string_view collection, const Uuid& id) {
  docs::validate_collection(collection);
  bind_tenant();
  documents_[Key{std::string(collection), id}] = Staged{std::nullopt};
}

void DocumentSession::enqueue_event(const Uuid& stream_id, Expected expected, Event event) {
  std::vector<Event> events;
  events.push_back(std::move(event));
  enqueue_events(stream_id, expected, std::move(events));
}

void DocumentSession::enqueue_events(const Uuid& stream_id, Expected expected,
                                     std::vector<Event> events) {
  aggregates_detail::CommitRequest r;
  r.stream_id = stream_id;
  r.expected = expected;
  r.events = std::move(events);
  stage_commit(std::move(r));
}

void DocumentSession::stage_commit(aggregates_detail::CommitRequest request) {
  if (request.events.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "an append needs at least one event");
  }
  bind_tenant();
  commits_.push_back(std::move(request));
}

std::optional<std::int64_t> DocumentSession::tracked_version(std::string_view collection,
                                                             const Uuid& id) const {
  const auto it = identity_.find(Key{std::string(collection), id});
  if (it == identity_.end()) return std::nullopt;
  return it->second.version;
}

void DocumentSession::discard_changes() {
  documents_.clear();
  commits_.clear();
}

std::vector<AppendResult> DocumentSession::save_changes() {
  if (!has_changes()) return {};
  // Routed (and the tenant checked) before any transaction opens: nothing is written for an
  // unknown tenant.
  const auto& target_state = target();
  const auto& options = target_state.options;
  // Versions written, applied to the identity map only once the transaction committed.
  std::vector<std::pair<Key, std::int64_t>> written;
  std::vector<AppendResult> appends;
  // Every append of the transaction NOTIFYs when it may (they collapse into one at commit).
  std::optional<detail::AppendNotice> notice;
  if (!commits_.empty()) notice.emplace(target_state);
  try {
    appends = db::in_transaction(target_state.connections(), [&](pqxx::work& txn,
                                                                 db::Connection& conn) {
      written.clear();
      for (const auto& [key, staged] : documents_) {
        // Loaded documents are written only at the version they were loaded at.
        std::optional<std::int64_t> expected;
        if (const auto t = identity_.find(key); t != identity_.end()) expected = t->second.version;
        const auto& [collection, id] = key;
        if (staged.doc) {
          written.emplace_back(
              key, docs::put_in(txn, conn, target_state, collection, id, *staged.doc, expected));
        } else {
          if (expected && *expected > 0) {
            docs::remove_in(txn, conn, target_state, collection, id, expected);
          } else if (expected) {
            // Loaded as absent: it must still be absent.
            if (const auto row = docs::select_in(txn, conn, target_state, collection, id, false)) {
              throw DocVersionConflict(collection, to_string(id), 0, row->version);
            }
          } else {
            docs::remove_in(txn, conn, target_state, collection, id, std::nullopt);
          }
          written.emplace_back(key, 0);
        }
      }
      std::vector<AppendResult> out;
      out.reserve(commits_.size());
      for (const auto& request : commits_) {
        out.push_back(
            aggregates::commit_in(txn, conn, target_state, request, options.session_defaults,
                                  options.session_advisory_locks, notice->in_transaction()));
      }
      return out;
    });
  } catch (const Error& e) {
    // The tenant's schema was dropped (by another process) since this store cached it.
    if (target_state.tenant && (e.sqlstate() == "3F000" || e.sqlstate() == "42P01") &&
        detail::tenant_schema_gone(target_state)) {
      detail::forget_tenant(*state_, *target_state.tenant);
      throw TenantNotFound(*target_state.tenant, target_state.options.schema);
    }
    throw;
  }
  if (std::any_of(appends.begin(), appends.end(), [](const auto& a) { return !a.replayed; })) {
    notice->committed();
  }
  for (auto& [key, version] : written) {
    auto& t = identity_[key];
    t.version = version;
    t.doc = version > 0 ? documents_.at(key).doc : std::nullopt;
  }
  discard_changes();
  return appends;
}

}  // namespace rillflow
