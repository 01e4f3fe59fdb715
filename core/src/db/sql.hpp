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

/// Runs one statement with its parameters: prepared under a name on this connection while the
/// pool prepares statements, else unnamed in one round trip (safe behind any pooler). Every
/// parameterised statement in core goes through here.
template <class Txn, class... Args>
pqxx::result exec(Txn& txn, Connection& conn, const std::string& sql, Args&&... args) {
  if (conn.prepares()) return txn.exec_prepared(conn.prepared(sql), std::forward<Args>(args)...);
  return txn.exec_params(sql, std::forward<Args>(args)...);
}

/// Inside a catch block: true when the exception is a pooler's 42P05 / 26000 for a named
/// statement and the pool's prepared_statements setting is auto, which this turns off (the
/// caller then runs its work again once, on another connection).
bool retry_without_prepared(Pool& pool);

/// Runs `fn(Connection&)` on a pooled connection. Errors come out as rillflow::Error; a broken
/// connection is dropped from the pool instead of going back. Under prepared_statements auto,
/// the first 42P05 / 26000 from a pooler turns prepared statements off and `fn` runs once more
/// (its transaction was rolled back).
template <class Fn>
auto with_connection(Pool& pool, Fn&& fn) {
  for (int attempt = 0;; ++attempt) {
    auto lease = pool.acquire();
    try {
      return fn(*lease);
    } catch (...) {
      if (attempt == 0 && retry_without_prepared(pool)) {
        lease.discard();  // its session may hold a half-known set of names
        continue;
      }
      bool broken = false;
      try {
        rethrow_as_rillflow(pool.target(), broken);
      } catch (...) {
        if (broken) lease.discard();
        throw;
      }
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
