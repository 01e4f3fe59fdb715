#pragma once
// The typed, fluent document query: store.docs().query<Customer>().filter(...).fetch_all().

#include <rillflow/documents/detail/query_runner.hpp>
#include <rillflow/documents/document_query_context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rillflow {

/// A query over one collection whose rows convert to T (or to R given to a fetch call, e.g.
/// fetch_all<Json>() after select_fields). Obtained from DocumentStore::query<T>(). Every path
/// and value is a bound parameter. Not thread-safe while being built; fetching is const.
/// Fetching throws rillflow::Error (database failures, rows that do not convert to R).
template <class T>
class DocumentQuery {
 public:
  DocumentQuery(std::shared_ptr<const detail::StoreState> state, std::string collection)
      : state_(std::move(state)), ctx_(std::move(collection)) {}

  DocumentQuery& filter(Predicate p) {
    ctx_.filter(std::move(p));
    return *this;
  }
  DocumentQuery& order_by(std::string path, SortDirection direction = SortDirection::kAsc) {
    ctx_.order_by(std::move(path), direction);
    return *this;
  }
  DocumentQuery& limit(std::int64_t n) {
    ctx_.limit(n);
    return *this;
  }
  DocumentQuery& offset(std::int64_t n) {
    ctx_.offset(n);
    return *this;
  }
  DocumentQuery& page(std::int64_t number, std::int64_t size) {
    ctx_.page(number, size);
    return *this;
  }
  DocumentQuery& select_fields(std::vector<std::pair<std::string, std::string>> fields) {
    ctx_.select_fields(std::move(fields));
    return *this;
  }
  DocumentQuery& include_deleted() {
    ctx_.include_deleted();
    return *this;
  }
  DocumentQuery& only_deleted() {
    ctx_.only_deleted();
    return *this;
  }

  /// Every matching row, in order.
  template <class R = T>
  std::vector<R> fetch_all() const {
    return docs_detail::rows_as<R>(
        docs_detail::fetch(*state_, ctx_, docs_detail::Fetch::kAll, false));
  }
  /// Exactly one row: DocNotFound when none matches, Error (kInvalidArgument) when several do.
  template <class R = T>
  R fetch_one() const {
    auto rows = docs_detail::fetch(*state_, ctx_, docs_detail::Fetch::kUpToTwo, false);
    if (rows.size() != 1) docs_detail::throw_not_exactly_one(ctx_, rows.size());
    return json_to<R>(rows.front());
  }
  /// Zero or one row; Error (kInvalidArgument) when several match.
  template <class R = T>
  std::optional<R> fetch_optional() const {
    auto rows = docs_detail::fetch(*state_, ctx_, docs_detail::Fetch::kUpToTwo, false);
    if (rows.size() > 1) docs_detail::throw_not_exactly_one(ctx_, rows.size());
    if (rows.empty()) return std::nullopt;
    return json_to<R>(rows.front());
  }
  /// The first row in the query's order, if any.
  template <class R = T>
  std::optional<R> fetch_first() const {
    auto rows = docs_detail::fetch(*state_, ctx_, docs_detail::Fetch::kFirst, false);
    if (rows.empty()) return std::nullopt;
    return json_to<R>(rows.front());
  }
  /// How many documents match the filters (order and paging ignored).
  std::int64_t count() const { return docs_detail::count(*state_, ctx_); }

  const DocumentQueryContext& context() const noexcept { return ctx_; }

 private:
  std::shared_ptr<const detail::StoreState> state_;
  DocumentQueryContext ctx_;
};

}  // namespace rillflow
