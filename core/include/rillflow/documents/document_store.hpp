#pragma once
// JSONB documents with optimistic versions, partial updates, soft delete and queries.

#include <rillflow/documents/compiled_query.hpp>
#include <rillflow/documents/document_collection.hpp>
#include <rillflow/documents/query.hpp>
#include <rillflow/fwd.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rillflow {

/// A document with the version it was read at. Structured bindings work:
/// `auto [customer, version] = *store.docs().get<Customer>(id);`
template <class T>
struct Versioned {
  T doc;
  std::int64_t version = 0;
};

/// One field of a partial update: the path ("profile.name", "a.b[0].c") and its new value.
struct FieldUpdate {
  std::string path;
  Json value;
};

/// Documents stored as JSONB, keyed by (collection, id), with a version that starts at 1 and
/// grows by one with every write. Obtained from Store::docs(); cheap to copy; thread-safe.
///
/// Typed calls take the collection from T (see DocumentCollection) and map T through
/// Boost.JSON (value_from / value_to: described structs need no code). The overloads that take
/// a collection name first work on raw Json.
///
/// Expected versions: `expected` N >= 1 means the document must be at version N (else
/// DocVersionConflict, or DocNotFound when it does not exist); 0 means it must not exist yet;
/// nullopt means no check. Soft-deleted documents are invisible to get, update and patch
/// (DocNotFound) and to queries unless asked for; put revives them.
/// Throws rillflow::Error for database failures and documents that do not convert to T.
class DocumentStore {
 public:
  explicit DocumentStore(std::shared_ptr<const detail::StoreState> state)
      : state_(std::move(state)) {}

  /// Inserts or replaces the document; returns its new version (1 for a new document).
  template <Document T>
  std::int64_t put(const Uuid& id, const T& doc,
                   std::optional<std::int64_t> expected = std::nullopt) const {
    return put(collection_of<T>(), id, json_from(doc), expected);
  }
  /// The live document and its version, or nullopt when missing or soft-deleted.
  template <Document T>
  std::optional<Versioned<T>> get(const Uuid& id) const {
    auto found = get(collection_of<T>(), id);
    if (!found) return std::nullopt;
    return Versioned<T>{json_to<T>(found->doc), found->version};
  }
  /// Read-modify-write under the row lock: loads the document at version `expected`, calls
  /// fn(T&), writes the result. Returns the new version.
  template <Document T, class Fn>
  std::int64_t update(const Uuid& id, std::int64_t expected, Fn&& fn) const {
    return update(collection_of<T>(), id, expected, [&](Json& json) {
      T doc = json_to<T>(json);
      fn(doc);
      json = json_from(doc);
    });
  }
  /// Sets one field, leaving every other field as it was; missing parent objects are created.
  template <Document T, class V>
  std::int64_t patch(const Uuid& id, std::optional<std::int64_t> expected, std::string path,
                     const V& value) const {
    return patch_fields(collection_of<T>(), id, expected, {{std::move(path), json_from(value)}});
  }
  /// Sets several fields in one write.
  template <Document T>
  std::int64_t patch_fields(const Uuid& id, std::optional<std::int64_t> expected,
                            std::vector<FieldUpdate> fields) const {
    return patch_fields(collection_of<T>(), id, expected, std::move(fields));
  }
  /// Deletes the row for good (live or soft-deleted). Returns false when there was none.
  /// (`delete` is a C++ keyword.)
  template <Document T>
  bool remove(const Uuid& id, std::optional<std::int64_t> expected = std::nullopt) const {
    return remove(collection_of<T>(), id, expected);
  }
  /// Hides the document from get and queries; returns the new version. DocNotFound when
  /// there is no such document; soft-deleting a soft-deleted document changes nothing.
  template <Document T>
  std::int64_t soft_delete(const Uuid& id) const {
    return soft_delete(collection_of<T>(), id);
  }
  /// Undoes soft_delete; returns the new version (unchanged when it was not deleted).
  template <Document T>
  std::int64_t restore(const Uuid& id) const {
    return restore(collection_of<T>(), id);
  }
  /// Puts many documents in one statement (no version checks). Returns the new versions in
  /// input order.
  template <Document T>
  std::vector<std::int64_t> put_many(const std::vector<std::pair<Uuid, T>>& docs) const {
    std::vector<std::pair<Uuid, Json>> all;
    all.reserve(docs.size());
    for (const auto& [id, doc] : docs) all.emplace_back(id, json_from(doc));
    return put_many(collection_of<T>(), all);
  }
  /// A query over T's collection.
  template <Document T>
  DocumentQuery<T> query() const {
    return DocumentQuery<T>(state_, std::string(collection_of<T>()));
  }
  /// Runs a compiled query as a statement prepared once per pooled connection.
  template <class R>
  std::vector<R> execute_compiled(const CompiledQuery<R>& compiled) const {
    DocumentQueryContext ctx;
    if constexpr (Document<R>) ctx.from<R>();
    compiled.configure(ctx);
    return docs_detail::rows_as<R>(
        docs_detail::fetch(*state_, ctx, docs_detail::Fetch::kAll, true));
  }

  // Untyped: the collection is named at run time, documents are Json.
  std::int64_t put(std::string_view collection, const Uuid& id, const Json& doc,
                   std::optional<std::int64_t> expected = std::nullopt) const;
  std::optional<Versioned<Json>> get(std::string_view collection, const Uuid& id) const;
  /// Like get, but also returns a soft-deleted document (deleted says which).
  struct Row {
    Json doc;
    std::int64_t version = 0;
    bool deleted = false;
  };
  std::optional<Row> get_any(std::string_view collection, const Uuid& id) const;
  std::int64_t update(std::string_view collection, const Uuid& id, std::int64_t expected,
                      const std::function<void(Json&)>& fn) const;
  std::int64_t patch_fields(std::string_view collection, const Uuid& id,
                            std::optional<std::int64_t> expected,
                            std::vector<FieldUpdate> fields) const;
  std::int64_t patch(std::string_view collection, const Uuid& id,
                     std::optional<std::int64_t> expected, std::string path, Json value) const {
    return patch_fields(collection, id, expected, {{std::move(path), std::move(value)}});
  }
  bool remove(std::string_view collection, const Uuid& id,
              std::optional<std::int64_t> expected = std::nullopt) const;
  std::int64_t soft_delete(std::string_view collection, const Uuid& id) const;
  std::int64_t restore(std::string_view collection, const Uuid& id) const;
  std::vector<std::int64_t> put_many(std::string_view collection,
                                     const std::vector<std::pair<Uuid, Json>>& docs) const;
  /// The collections holding a document with this id (live or soft-deleted), sorted.
  std::vector<std::string> collections_of(const Uuid& id) const;

 private:
  std::shared_ptr<const detail::StoreState> state_;
};

}  // namespace rillflow
