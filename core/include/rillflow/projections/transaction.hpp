#pragma once

#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace rillflow {

/// Rows returned by Transaction::exec, as text (NULL is nullopt).
class QueryResult {
 public:
  using Row = std::vector<std::optional<std::string>>;
  explicit QueryResult(std::vector<Row> rows = {}) : rows_(std::move(rows)) {}

  std::size_t size() const noexcept { return rows_.size(); }
  bool empty() const noexcept { return rows_.empty(); }
  const Row& operator[](std::size_t row) const { return rows_.at(row); }
  /// The value at (row, column); throws rillflow::Error when it is NULL or out of range.
  const std::string& text(std::size_t row, std::size_t column) const;
  std::int64_t int64(std::size_t row, std::size_t column) const;
  auto begin() const { return rows_.begin(); }
  auto end() const { return rows_.end(); }

 private:
  std::vector<Row> rows_;
};

/// A statement parameter: text, or NULL.
using SqlParam = std::optional<std::string>;

namespace detail {
inline SqlParam to_sql_param(std::nullopt_t) {
  return std::nullopt;
}
inline SqlParam to_sql_param(std::nullptr_t) {
  return std::nullopt;
}
inline SqlParam to_sql_param(std::string_view v) {
  return std::string(v);
}
inline SqlParam to_sql_param(const std::string& v) {
  return v;
}
inline SqlParam to_sql_param(const char* v) {
  return std::string(v);
}
inline SqlParam to_sql_param(bool v) {
  return std::string(v ? "true" : "false");
}
inline SqlParam to_sql_param(const Uuid& v) {
  return to_string(v);
}
inline SqlParam to_sql_param(const Json& v) {
  return boost::json::serialize(v);
}
SqlParam to_sql_param(double v);
template <class T>
requires std::is_integral_v<T> SqlParam to_sql_param(T v) {
  return std::to_string(v);
}
template <class T>
SqlParam to_sql_param(const std::optional<T>& v) {
  return v ? to_sql_param(*v) : std::nullopt;
}
}  // namespace detail

/// The transaction a projection handler writes its read model through. The handler's writes
/// and the projection's checkpoint commit together: a read model updated exactly once per event.
///
/// Statements take $1, $2... parameters (strings, integers, doubles, bools, Json, Uuid,
/// optionals; never paste values into SQL text) and are prepared once per connection.
/// Throws rillflow::Error on failure. Not thread-safe; valid only during the call it is passed to.
class Transaction {
 public:
  template <class... Args>
  QueryResult exec(std::string_view sql, const Args&... args) {
    return exec_params(sql, {detail::to_sql_param(args)...});
  }
  QueryResult exec_params(std::string_view sql, const std::vector<SqlParam>& params);

  /// The store's schema (validated, unquoted): where Rillflow's own tables live.
  const std::string& schema() const noexcept { return schema_; }
  /// Where the read model is to be written (validated, unquoted): the store's schema, or during a
  /// shadow rebuild the shadow schema the new read model is built in (docs/projections.md,
  /// "Shadow rebuilds"). The search_path starts with it, so unqualified names land there too.
  const std::string& target_schema() const noexcept { return target_schema_; }
  /// True while a shadow rebuild builds the read model beside the live one.
  bool is_shadow() const noexcept { return target_schema_ != schema_; }

  /// For the runtime: wraps its internal transaction.
  Transaction(void* impl, void* connection, std::string schema, std::string target_schema = {})
      : impl_(impl),
        connection_(connection),
        schema_(std::move(schema)),
        target_schema_(target_schema.empty() ? schema_ : std::move(target_schema)) {}

 private:
  void* impl_;        // pqxx::transaction_base*
  void* connection_;  // db::Connection*
  std::string schema_;
  std::string target_schema_;  // appended in plugin ABI 3: older plugins never read it
};

}  // namespace rillflow
