#pragma once
// Building the public Transaction from libpqxx objects (private to rillflow::core).

#include "db/pool.hpp"

#include <rillflow/projections/transaction.hpp>

#include <pqxx/pqxx>

namespace rillflow::projections {

/// The Transaction keeps a type-erased pqxx::transaction_base*: convert to the base first.
/// Statements are prepared once per connection.
inline Transaction wrap(pqxx::transaction_base& txn, db::Connection& conn,
                        const std::string& schema, const std::string& target_schema = {}) {
  return Transaction(static_cast<void*>(&txn), static_cast<void*>(&conn), schema, target_schema);
}

/// A transaction driven by explicit BEGIN / SAVEPOINT / COMMIT statements over a
/// pqxx::nontransaction. libpqxx 6.4's subtransaction cannot recover from a failed prepared or
/// parameterised statement (the outer transaction stays aborted), and projections need exactly
/// that: one event's failure undone, the rest of the batch kept. Rolls back unless committed.
class ExplicitTransaction {
 public:
  /// `begin` may carry settings local to the transaction ("begin; set local ...").
  explicit ExplicitTransaction(db::Connection& conn, const std::string& begin = "begin")
      : txn_(conn.raw()) {
    txn_.exec(begin);
  }
  ~ExplicitTransaction() {
    if (!open_) return;
    try {
      txn_.exec("rollback");
    } catch (...) {
    }
  }
  ExplicitTransaction(const ExplicitTransaction&) = delete;
  ExplicitTransaction& operator=(const ExplicitTransaction&) = delete;

  pqxx::transaction_base& operator*() { return txn_; }
  void savepoint() { txn_.exec("savepoint rillflow_event"); }
  void release_savepoint() { txn_.exec("release savepoint rillflow_event"); }
  void rollback_to_savepoint() { txn_.exec("rollback to savepoint rillflow_event"); }
  void commit() {
    open_ = false;
    txn_.exec("commit");
  }

 private:
  pqxx::nontransaction txn_;
  bool open_ = true;
};

}  // namespace rillflow::projections
