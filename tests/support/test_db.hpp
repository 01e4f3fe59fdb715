#pragma once
// The test harness: one PostgreSQL cluster per test process (RILLFLOW_TEST_DATABASE_URL, else an
// embedded cluster started on first use) and a fresh schema per test. With
// RILLFLOW_TEST_POOLER=pgbouncer every store goes through a private PgBouncer in transaction
// mode (tests/support/pgbouncer.hpp); raw() connections stay direct.

#include <rillflow/rillflow.hpp>

#include <pqxx/pqxx>

#include <string>

namespace rillflow::testing {

/// The URL stores use: the cluster's, or the PgBouncer's in front of it when the harness runs
/// through a pooler. Starts the embedded cluster (and PgBouncer) on first call.
const std::string& cluster_url();
/// The cluster's own URL, never through the pooler.
const std::string& direct_url();
/// True when RILLFLOW_TEST_POOLER=pgbouncer.
bool through_pooler();

/// A uniquely named schema, migrated, dropped when the test ends.
class TestSchema {
 public:
  explicit TestSchema(bool migrate = true);
  ~TestSchema();
  TestSchema(const TestSchema&) = delete;
  TestSchema& operator=(const TestSchema&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return cluster_url(); }
  /// A builder preset with the URL and the schema.
  StoreBuilder builder() const;
  Store& store() { return store_; }
  /// A raw connection (direct, never through the pooler) for tests that must hold transactions
  /// open or inspect tables.
  pqxx::connection raw() const;

 private:
  std::string name_;
  Store store_;
};

/// A random lower-case suffix.
std::string random_suffix();

}  // namespace rillflow::testing
