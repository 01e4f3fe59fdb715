#include <rillflow/error.hpp>
#include <rillflow/projections/transaction.hpp>

#include "db/pool.hpp"
#include "db/sql.hpp"

#include <cstdio>

namespace rillflow {

namespace detail {
SqlParam to_sql_param(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return std::string(buf);
}
}  // namespace detail

const std::string& QueryResult::text(std::size_t row, std::size_t column) const {
  const auto& r = rows_.at(row);
  if (column >= r.size() || !r[column]) {
    throw Error(ErrorCode::kInvalidArgument, "column " + std::to_string(column) + " of row " +
                                                 std::to_string(row) + " is NULL or missing");
  }
  return *r[column];
}

std::int64_t QueryResult::int64(std::size_t row, std::size_t column) const {
  const auto& t = text(row, column);
  try {
    return std::stoll(t);
  } catch (const std::exception&) {
    throw Error(ErrorCode::kInvalidArgument, "not an integer: '" + t.substr(0, 40) + "'");
  }
}

QueryResult Transaction::exec_params(std::string_view sql, const std::vector<SqlParam>& params) {
  auto* txn = static_cast<pqxx::transaction_base*>(impl_);
  auto* conn = static_cast<db::Connection*>(connection_);
  try {
    const std::string text(sql);
    const auto r = db::exec(*txn, *conn, text, pqxx::prepare::make_dynamic_params(params));
    std::vector<QueryResult::Row> rows;
    rows.reserve(r.size());
    for (const auto& row : r) {
      QueryResult::Row out;
      out.reserve(row.size());
      for (const auto& field : row) {
        out.push_back(field.is_null()
                          ? std::nullopt
                          : std::optional<std::string>(std::in_place, field.c_str(), field.size()));
      }
      rows.push_back(std::move(out));
    }
    return QueryResult(std::move(rows));
  } catch (...) {
    bool broken = false;
    try {
      db::rethrow_as_rillflow("the database", broken);
    } catch (...) {
      if (broken) conn->mark_broken();
      throw;
    }
  }
}

}  // namespace rillflow
