#include "support/test_db.hpp"

#include "support/pgbouncer.hpp"

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

std::optional<PgBouncer>& pooler() {
  static std::optional<PgBouncer> instance;
  return instance;
}
}  // namespace

bool through_pooler() {
  const char* env = std::getenv("RILLFLOW_TEST_POOLER");
  return env != nullptr && std::string_view(env) == "pgbouncer";
}

const std::string& direct_url() {
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

const std::string& cluster_url() {
  static std::once_flag once;
  static std::string url;
  std::call_once(once, [] {
    url = direct_url();
    if (through_pooler()) {
      pooler().emplace(PgBouncer::start(url));
      url = pooler()->url();
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
  return pqxx::connection(direct_url());
}

}  // namespace rillflow::testing
