#pragma once
// The test harness: one PostgreSQL cluster per test process (RILLFLOW_TEST_DATABASE_URL, else an
// embedded cluster started on first use) and a fresh schema per test.

#include <rillflow/rillflow.hpp>

#include <pqxx/pqxx>

#include <string>

namespace rillflow::testing {

/// The cluster's URL; starts the embedded cluster on first call.
const std::string& cluster_url();

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
  /// A raw connection for tests that must hold transactions open or inspect tables.
  pqxx::connection raw() const;

 private:
  std::string name_;
  Store store_;
};

/// A random lower-case suffix.
std::string random_suffix();

}  // namespace rillflow::testing
