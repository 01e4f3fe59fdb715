#pragma once
// The description of one document query: collection, filters, order, paging, projection.

#include <rillflow/documents/document_collection.hpp>
#include <rillflow/documents/predicate.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rillflow {

/// Asc/Desc are the spellings of the seed API; kAsc/kDesc the project's constant style.
enum class SortDirection { kAsc, kDesc, Asc = kAsc, Desc = kDesc };

/// Which documents a query sees with respect to soft delete.
enum class DeletedFilter { kLiveOnly, kIncludeDeleted, kOnlyDeleted };

/// One sort key: a field path and a direction. JSON values sort by type first, then numbers
/// numerically and strings by the database collation; missing fields sort last.
struct SortKey {
  std::string path;
  SortDirection direction = SortDirection::kAsc;
};

/// One projected field: the output key and the path it is read from.
struct FieldSelection {
  std::string alias;
  std::string path;
};

/// Builds the description of a query; DocumentQuery<T> and CompiledQuery::configure use it.
/// A value type, not thread-safe while being built.
class DocumentQueryContext {
 public:
  DocumentQueryContext() = default;
  explicit DocumentQueryContext(std::string collection) : collection_(std::move(collection)) {}

  /// Sets the collection to query.
  DocumentQueryContext& from(std::string collection) {
    collection_ = std::move(collection);
    return *this;
  }
  template <Document T>
  DocumentQueryContext& from() {
    return from(std::string(collection_of<T>()));
  }
  /// Adds a filter; several filters must all hold.
  DocumentQueryContext& filter(Predicate p) {
    filters_.push_back(std::move(p));
    return *this;
  }
  /// Adds a sort key (earlier keys sort first); ties are broken by document id.
  DocumentQueryContext& order_by(std::string path, SortDirection direction = SortDirection::kAsc) {
    order_.push_back({std::move(path), direction});
    return *this;
  }
  DocumentQueryContext& limit(std::int64_t n) {
    limit_ = n;
    return *this;
  }
  DocumentQueryContext& offset(std::int64_t n) {
    offset_ = n;
    return *this;
  }
  /// Page `number` (1-based) of `size` documents: offset (number - 1) * size, limit size.
  DocumentQueryContext& page(std::int64_t number, std::int64_t size) {
    limit_ = size;
    offset_ = (number < 1 ? 0 : number - 1) * size;
    return *this;
  }
  /// Returns objects {alias: value at path, ...} instead of whole documents.
  DocumentQueryContext& select_fields(std::vector<std::pair<std::string, std::string>> fields) {
    for (auto& [alias, path] : fields) select_.push_back({std::move(alias), std::move(path)});
    return *this;
  }
  /// Soft-deleted documents too.
  DocumentQueryContext& include_deleted() {
    deleted_ = DeletedFilter::kIncludeDeleted;
    return *this;
  }
  /// Only soft-deleted documents.
  DocumentQueryContext& only_deleted() {
    deleted_ = DeletedFilter::kOnlyDeleted;
    return *this;
  }

  const std::string& collection() const noexcept { return collection_; }
  const std::vector<Predicate>& filters() const noexcept { return filters_; }
  const std::vector<SortKey>& order() const noexcept { return order_; }
  const std::optional<std::int64_t>& limit_value() const noexcept { return limit_; }
  const std::optional<std::int64_t>& offset_value() const noexcept { return offset_; }
  const std::vector<FieldSelection>& selection() const noexcept { return select_; }
  DeletedFilter deleted() const noexcept { return deleted_; }

 private:
  std::string collection_;
  std::vector<Predicate> filters_;
  std::vector<SortKey> order_;
  std::optional<std::int64_t> limit_;
  std::optional<std::int64_t> offset_;
  std::vector<FieldSelection> select_;
  DeletedFilter deleted_ = DeletedFilter::kLiveOnly;
};

}  // namespace rillflow
