#pragma once
// SQL helpers private to rillflow::core: identifier quoting, error translation, transactions.

#include "db/pool.hpp"

#include <pqxx/pqxx>

#include <string>
#include <string_view>
#include <utility>

namespace rillflow::db {

/// "name" with embedded quotes doubled. Only for names already validated.
std::string quote_ident(std::string_view name);
/// Replaces every "{schema}" in `sql` with the quoted schema.
std::string with_schema(std::string_view sql, std::string_view quoted_schema);
/// A libpqxx / libpq message without trailing newlines and the "ERROR:  " prefix.
std::string trim_message(std::string_view message);

/// Rethrows the exception being handled as a rillflow::Error. Sets `connection_broken` when
/// the connection must not go back to the pool. Call only inside a catch block.
[[noreturn]] void rethrow_as_rillflow(const std::string& target, bool& connection_broken);

/// Runs `fn(Connection&)` on a pooled connection. Errors come out as rillflow::Error; a broken
/// connection is dropped from the pool instead of going back.
template <class Fn>
auto with_connection(Pool& pool, Fn&& fn) {
  auto lease = pool.acquire();
  try {
    return fn(*lease);
  } catch (...) {
    bool broken = false;
    try {
      rethrow_as_rillflow(pool.target(), broken);
    } catch (...) {
      if (broken) lease.discard();
      throw;
    }
  }
}

/// Runs `fn(pqxx::work&, Connection&)` in one transaction and commits it.
template <class Fn>
auto in_transaction(Pool& pool, Fn&& fn) {
  return with_connection(pool, [&](Connection& conn) {
    pqxx::work txn(conn.raw());
    if constexpr (std::is_void_v<decltype(fn(txn, conn))>) {
      fn(txn, conn);
      txn.commit();
    } else {
      auto result = fn(txn, conn);
      txn.commit();
      return result;
    }
  });
}

/// Runs `fn(pqxx::nontransaction&, Connection&)`: statements in autocommit mode.
template <class Fn>
auto without_transaction(Pool& pool, Fn&& fn) {
  return with_connection(pool, [&](Connection& conn) {
    pqxx::nontransaction txn(conn.raw());
    return fn(txn, conn);
  });
}

}  // namespace rillflow::db
