#pragma once
// Compiled queries: a query shape written once as a class, prepared once per connection.

#include <rillflow/documents/document_query_context.hpp>

namespace rillflow {

/// A reusable query whose rows convert to R. configure() describes it; members of the
/// implementing class carry its arguments (they become bound values, so one prepared
/// statement serves every argument value):
///
///   struct CustomersByStatus : CompiledQuery<Customer> {
///     explicit CustomersByStatus(std::string s) : status(std::move(s)) {}
///     std::string status;
///     void configure(DocumentQueryContext& q) const override {
///       q.filter(Predicate::eq("status", status)).order_by("email");
///     }
///   };
///   store.docs().execute_compiled(CustomersByStatus("active"));
///
/// The collection defaults to R's when R is a Document; otherwise configure() calls from().
/// DocumentStore::execute_compiled runs it as a statement prepared once per pooled connection
/// (keyed by the generated SQL, which depends only on the query's shape).
template <class R>
class CompiledQuery {
 public:
  using Result = R;
  virtual ~CompiledQuery() = default;
  virtual void configure(DocumentQueryContext& query) const = 0;
};

}  // namespace rillflow
