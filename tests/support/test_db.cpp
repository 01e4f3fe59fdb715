#include "support/test_db.hpp"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <random>

namespace rillflow::testing {

namespace {
std::optional<EmbeddedPostgres>& embedded() {
  static std::optional<EmbeddedPostgres> instance;
  return instance;
}
}  // namespace

const std::string& cluster_url() {
  static std::once_flag once;
  static std::string url;
  std::call_once(once, [] {
    if (const char* env = std::getenv("RILLFLOW_TEST_DATABASE_URL"); env != nullptr && *env) {
      url = env;
    } else {
      embedded() = EmbeddedPostgres::start();
      url = embedded()->url();
    }
  });
  return url;
}

std::string random_suffix() {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mutex);
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  for (int i = 0; i < 10; ++i) out += kChars[rng() % 36];
  return out;
}

TestSchema::TestSchema(bool migrate)
    : name_("t_" + random_suffix()),
      store_(Store::builder(cluster_url()).schema(name_).max_connections(20).build()) {
  if (migrate) store_.schema().sync();
}

TestSchema::~TestSchema() {
  try {
    auto conn = raw();
    pqxx::nontransaction(conn).exec("drop schema if exists \"" + name_ + "\" cascade");
  } catch (...) {
  }
}

StoreBuilder TestSchema::builder() const {
  auto b = Store::builder(cluster_url());
  b.schema(name_);
  return b;
}

pqxx::connection TestSchema::raw() const {
  // libpq accepts the URL as is.
  return pqxx::connection(cluster_url());
}

}  // namespace rillflow::testing
