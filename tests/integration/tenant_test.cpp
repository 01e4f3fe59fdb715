// Schema-per-tenant: naming rule, provisioning (once, concurrently), routing, fail-fast on an
// unprovisioned tenant, and isolation through every API.
#include "schema/migrations.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>
#include <boost/describe.hpp>

#include <latch>
#include <thread>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace tenant_test {

struct Customer {
  static constexpr std::string_view kCollection = "customers";
  std::string email;
  int visits = 0;
};
BOOST_DESCRIBE_STRUCT(Customer, (), (email, visits))

struct Visits {
  std::int64_t n = 0;
  std::int64_t v = 0;
  void apply(const EventEnvelope& e) {
    if (e.type == "Visited") ++n;
    v = e.stream_seq;
  }
  std::int64_t version() const { return v; }
};
BOOST_DESCRIBE_STRUCT(Visits, (), (n, v))

// Tenant schemas are database-wide: every test uses fresh names and drops what it made.
struct Tenants {
  explicit Tenants(TestSchema& db) : db_(db) {}
  ~Tenants() {
    try {
      auto conn = db_.raw();
      for (const auto& n : names) {
        pqxx::nontransaction(conn).exec("drop schema if exists \"tenant_" + n + "\" cascade");
      }
    } catch (...) {
    }
  }
  std::string fresh(const std::string& stem) {
    names.push_back(stem + "_" + testing::random_suffix());
    return names.back();
  }
  TestSchema& db_;
  std::vector<std::string> names;
};

std::int64_t scalar(TestSchema& db, const std::string& sql) {
  auto conn = db.raw();
  return pqxx::nontransaction(conn).exec(sql)[0][0].as<std::int64_t>();
}

bool schema_exists(TestSchema& db, const std::string& schema) {
  auto conn = db.raw();
  return !pqxx::nontransaction(conn)
              .exec_params("select 1 from pg_namespace where nspname = $1", schema)
              .empty();
}

std::int64_t schema_count(TestSchema& db) {
  return scalar(db, "select count(*) from pg_namespace");
}

class Counting : public ProjectionHandler {
 public:
  void apply(const EventEnvelope& e, Transaction& txn) override {
    txn.exec("insert into \"" + txn.schema() + "\".seen (global_seq) values ($1)", e.global_seq);
  }
  void prepare(Transaction& txn) override {
    txn.exec("create table if not exists \"" + txn.schema() + "\".seen (global_seq bigint)");
  }
};

}  // namespace tenant_test

using namespace tenant_test;

TEST_CASE("tenant_names_follow_one_rule_and_hostile_names_run_nothing") {
  for (const char* ok : {"a", "acme", "acme_corp", "a1", "globex2", "tenant_x"}) {
    CHECK_NOTHROW(validate_tenant_name(ok));
  }
  CHECK_NOTHROW(validate_tenant_name(std::string(48, 'a')));
  CHECK(tenant_schema_of("acme") == "tenant_acme");

  TestSchema db;
  const auto schemas_before = schema_count(db);
  const std::vector<std::string> hostile{"",
                                         "Acme",
                                         "acme-corp",
                                         "acme corp",
                                         "1acme",
                                         "_acme",
                                         std::string(49, 'a'),
                                         "acme;drop schema public cascade",
                                         "acme\"; drop table x; --",
                                         "a'b",
                                         "acme\n",
                                         std::string("ac\0me", 6),
                                         "\xc3\xa4"
                                         "cme",
                                         "public",
                                         "information_schema",
                                         "pg_catalog",
                                         "pg_toast",
                                         "pg_temp",
                                         "pg_x"};
  for (const auto& name : hostile) {
    CAPTURE(name);
    const auto refused = [&](auto&& call) {
      try {
        call();
        FAIL("accepted a hostile tenant name");
      } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::kInvalidArgument);
        CHECK(std::string(e.what()).find("invalid tenant name") != std::string::npos);
        CHECK(std::string(e.what()).find("[a-z][a-z0-9_]{0,47}") != std::string::npos);
        // Control bytes are never echoed raw.
        CHECK(std::string(e.what()).find('\n') == std::string::npos);
      }
    };
    refused([&] { db.store().ensure_tenant(name); });
    refused([&] { db.store().tenant(name); });
    refused([&] { db.store().tenants().drop(name); });
    refused([&] { db.store().tenants().status(name); });
    refused([&] { db.store().tenants().archive(name, "/tmp/rillflow-never"); });
    refused([&] { tenant_schema_of(name); });
  }
  CHECK(schema_count(db) == schemas_before);
  CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".tenants") == 0);
  CHECK(schema_exists(db, "public"));
}

TEST_CASE("ensure_tenant_provisions_the_same_migrations_once_and_caches_it") {
  TestSchema db;
  Tenants t(db);
  const auto name = t.fresh("acme");
  const auto schema = "tenant_" + name;

  const auto first = db.store().ensure_tenant(name);
  CHECK(first.created);
  CHECK_FALSE(first.cached);
  CHECK(first.applied.size() == schema::migrations().size());
  CHECK(first.tenant.name == name);
  CHECK(first.tenant.schema == schema);
  CHECK(first.tenant.schema_version == SchemaManager::latest_version());
  CHECK_FALSE(first.tenant.archived_at);
  CHECK(scalar(db, "select count(*) from \"" + schema + "\".rillflow_migrations") ==
        static_cast<std::int64_t>(schema::migrations().size()));

  const auto again = db.store().ensure_tenant(name);
  CHECK(again.cached);
  CHECK(again.applied.empty());
  // Another store (another app instance): nothing to migrate, the registry row is kept.
  const auto other = db.builder().build().ensure_tenant(name);
  CHECK_FALSE(other.cached);
  CHECK_FALSE(other.created);
  CHECK(other.applied.empty());
  CHECK(other.tenant.created_at == first.tenant.created_at);

  // The tenant's schema is checked like any other and is current.
  CHECK(db.store().tenants().drift(name).ok());
  CHECK(db.store().tenant(name).schema().drift().ok());
  const auto listed = db.store().tenants().list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].name == name);
  const auto status = db.store().tenants().status(name);
  CHECK(status.drift.ok());
  CHECK(status.rows.at("events") == 0);
  CHECK(status.latest_version == SchemaManager::latest_version());
}

TEST_CASE("concurrent_ensure_tenant_from_8_threads_migrates_once") {
  TestSchema db;
  Tenants t(db);
  constexpr int kThreads = 8;
  for (const bool one_store : {false, true}) {
    CAPTURE(one_store);
    const auto name = t.fresh(one_store ? "shared" : "apps");
    auto shared = db.builder().max_connections(kThreads).build();
    std::latch start(kThreads);
    std::vector<EnsuredTenant> results(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        // Eight app instances (own stores, own pools), or eight threads of one.
        auto store = one_store ? shared : db.builder().max_connections(1).build();
        start.arrive_and_wait();
        try {
          results[i] = store.ensure_tenant(name);
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    int migrated = 0, created = 0;
    for (int i = 0; i < kThreads; ++i) {
      CHECK(errors[i] == "");
      if (!results[i].applied.empty()) {
        ++migrated;
        CHECK(results[i].applied.size() == schema::migrations().size());
      }
      if (results[i].created) ++created;
      CHECK(results[i].tenant.schema == "tenant_" + name);
    }
    CHECK(migrated == 1);
    CHECK(created == 1);
    CHECK(scalar(db, "select count(*) from \"tenant_" + name + "\".rillflow_migrations") ==
          static_cast<std::int64_t>(schema::migrations().size()));
    CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".tenants where name = '" + name +
                         "'") == 1);
  }
}

TEST_CASE("an_unprovisioned_tenant_fails_fast_with_tenant_not_found_and_writes_nothing") {
  TestSchema db;
  Tenants t(db);
  const auto name = t.fresh("ghost");
  const auto schema = "tenant_" + name;
  auto store = db.builder().tenant_strategy(TenantStrategy::SchemaPerTenant).build();

  auto session = store.session();
  session.context().tenant = name;
  session.store(new_uuid(), Customer{"a@example.com", 1});
  session.enqueue_event(new_uuid(), Expected::any(), Event("Visited", 1));
  try {
    session.save_changes();
    FAIL("saved for an unprovisioned tenant");
  } catch (const TenantNotFound& e) {
    CHECK(e.code() == ErrorCode::kTenantNotFound);
    CHECK(e.schema() == schema);
    CHECK(e.tenant() == name);
    CHECK(std::string(e.what()).find("TenantNotFound(\"" + schema + "\")") != std::string::npos);
  }
  CHECK(session.has_changes());  // kept to retry
  CHECK_FALSE(schema_exists(db, schema));
  CHECK_THROWS_AS(store.tenant(name), TenantNotFound);
  auto reader = store.session();
  reader.context().tenant = name;
  CHECK_THROWS_AS(reader.load<Customer>(new_uuid()), TenantNotFound);
  CHECK_FALSE(schema_exists(db, schema));
  CHECK_FALSE(store.tenants().find(name));

  // Provisioned now (by another instance): the kept work saves, in the tenant's schema.
  db.builder().build().ensure_tenant(name);
  CHECK(session.save_changes().size() == 1);
  CHECK(scalar(db, "select count(*) from \"" + schema + "\".docs") == 1);
  CHECK(scalar(db, "select count(*) from \"" + schema + "\".events") == 1);
  CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".docs") == 0);
  CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".events") == 0);
}

TEST_CASE("sessions_route_by_the_tenant_strategy") {
  TestSchema db;
  Tenants t(db);
  const auto acme = t.fresh("acme");
  db.store().ensure_tenant(acme);
  auto per_tenant = db.builder().tenant_strategy(TenantStrategy::kSchemaPerTenant).build();

  // Schema-per-tenant: a session without a tenant is refused before any statement.
  auto anonymous = per_tenant.session();
  anonymous.store(new_uuid(), Customer{"x@example.com", 0});
  try {
    anonymous.save_changes();
    FAIL("saved without a tenant");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
    CHECK(std::string(e.what()).find("tenant required") != std::string::npos);
  }
  // Single-tenant (the default): a session naming a tenant is refused, not silently ignored.
  auto single = db.store().session();
  single.context().tenant = acme;
  CHECK_THROWS_WITH_AS(single.load<Customer>(new_uuid()), doctest::Contains("single-tenant"),
                       Error);
  // A tenant's store serves only that tenant.
  auto scoped = db.store().tenant(acme).session();
  CHECK(scoped.context().tenant == acme);
  scoped.context().tenant = t.fresh("other");
  CHECK_THROWS_AS(scoped.load<Customer>(new_uuid()), Error);
  // The tenant cannot change once the session has work.
  auto s = per_tenant.session();
  s.context().tenant = acme;
  s.store(new_uuid(), Customer{"a@example.com", 1});
  s.context().tenant = "globex";
  CHECK_THROWS_WITH_AS(s.save_changes(), doctest::Contains("cannot change"), Error);
  s.context().tenant = acme;
  CHECK_NOTHROW(s.save_changes());
  CHECK(scalar(db, "select count(*) from \"tenant_" + acme + "\".docs") == 1);
  CHECK(scalar(db, "select count(*) from \"" + db.name() + "\".docs") == 0);
  // A tenant's store cannot manage tenants.
  CHECK_THROWS_AS(db.store().tenant(acme).ensure_tenant("nested"), Error);
}

TEST_CASE("a_tenant_never_sees_another_tenants_data_through_any_api") {
  TestSchema db;
  Tenants t(db);
  const auto a_name = t.fresh("acme");
  const auto b_name = t.fresh("globex");
  auto store = db.builder().tenant_strategy(TenantStrategy::SchemaPerTenant).build();
  store.ensure_tenant(a_name);
  store.ensure_tenant(b_name);
  auto a = store.tenant(a_name);
  auto b = store.tenant(b_name);
  CHECK(a.tenant_name() == a_name);
  CHECK(a.options().schema == "tenant_" + a_name);

  // Events: append, read, version, head, feed.
  const auto stream = new_uuid();
  a.events().append_stream(stream, Expected::no_stream(),
                           {Event("Visited", 1), Event("Visited", 2)});
  CHECK(a.events().read_stream(stream).size() == 2);
  CHECK(b.events().read_stream(stream).empty());
  CHECK(b.events().stream_version(stream) == std::nullopt);
  CHECK(b.events().head() == 0);
  CHECK(a.events().head() > 0);
  CHECK(b.events().read_feed({}, 100).events.empty());
  CHECK(a.events().read_feed({}, 100).events.size() == 2);
  // The same stream id in B is a different stream: B's first append is version 1.
  CHECK(b.events()
            .append_stream(stream, Expected::no_stream(), {Event("Visited", 9)})
            .first_version == 1);
  CHECK(a.events().stream_version(stream) == 2);
  CHECK(a.resolve_stream_alias("orders:1") != b.resolve_stream_alias("orders:1"));
  CHECK_FALSE(db.store().find_stream_alias("orders:1"));

  // Documents: CRUD and queries.
  const auto id = new_uuid();
  a.docs().put(id, Customer{"a@acme.test", 1});
  CHECK(a.docs().get<Customer>(id));
  CHECK_FALSE(b.docs().get<Customer>(id));
  CHECK_THROWS_AS(b.docs().patch<Customer>(id, std::nullopt, "visits", 5), DocNotFound);
  CHECK_THROWS_AS(b.docs().soft_delete<Customer>(id), DocNotFound);
  CHECK_FALSE(b.docs().remove<Customer>(id));
  CHECK(b.docs().query<Customer>().count() == 0);
  CHECK(a.docs().query<Customer>().filter(Predicate::eq("email", "a@acme.test")).count() == 1);
  CHECK(b.docs().collections_of(id).empty());
  b.docs().put(id, Customer{"b@globex.test", 7});  // same id, B's own document
  CHECK(a.docs().get<Customer>(id)->doc.email == "a@acme.test");
  CHECK(a.docs().get<Customer>(id)->version == 1);

  // Sessions routed by context: B's session neither sees nor overwrites A's document.
  auto sb = store.session();
  sb.context().tenant = b_name;
  CHECK(sb.load<Customer>(id)->email == "b@globex.test");
  sb.store(id, Customer{"b2@globex.test", 8});
  sb.enqueue_event(stream, Expected::exact(1), Event("Visited", 10));
  sb.save_changes();
  auto sa = store.session();
  sa.context().tenant = a_name;
  CHECK(sa.load<Customer>(id)->email == "a@acme.test");
  CHECK(a.events().stream_version(stream) == 2);
  CHECK(b.events().stream_version(stream) == 2);

  // Aggregates and snapshots.
  const AggregateRepository<Visits> repo_a(a);
  const AggregateRepository<Visits> repo_b(b);
  const auto agg = new_uuid();
  repo_a.commit_and_snapshot(agg, Visits{}, {Event("Visited", 1), Event("Visited", 2)}, 1);
  CHECK(repo_a.load_with_snapshot(agg).n == 2);
  CHECK(repo_b.load_with_snapshot(agg).n == 0);
  CHECK(repo_b.load(agg).n == 0);
  CHECK(scalar(db, "select count(*) from \"tenant_" + b_name + "\".snapshots") == 0);
  CHECK(scalar(db, "select count(*) from \"tenant_" + a_name + "\".snapshots") == 1);
  // ...also when committed through a session routed to B with A's repository object.
  auto sagg = store.session();
  sagg.context().tenant = b_name;
  sagg.aggregates(repo_a).commit(agg, Expected::no_stream(), {Event("Visited", 3)});
  sagg.save_changes();
  CHECK(repo_b.load(agg).n == 1);
  CHECK(repo_a.load(agg).n == 2);

  // Projections and their admin.
  auto proj_a = ProjectionDaemon::builder(a)
                    .register_projection("visits", std::make_shared<Counting>())
                    .build();
  auto proj_b = ProjectionDaemon::builder(b).build();
  const auto events_a = scalar(db, "select count(*) from \"tenant_" + a_name + "\".events");
  CHECK(static_cast<std::int64_t>(proj_a.run_until_idle().processed) == events_a);
  CHECK(scalar(db, "select count(*) from \"tenant_" + a_name + "\".seen") == events_a);
  CHECK(proj_a.list().size() == 1);
  CHECK(proj_b.list().empty());
  CHECK_FALSE(proj_b.status("visits"));
  CHECK_THROWS_AS(proj_b.pause("visits"), NotFound);
  proj_a.pause("visits");
  CHECK(proj_a.status("visits")->paused);

  // The base schema saw none of it.
  for (const char* table : {"events", "streams", "docs", "snapshots", "work_units"}) {
    CHECK(scalar(db, "select count(*) from \"" + db.name() + "\"." + table) == 0);
  }
  const auto status_b = store.tenants().status(b_name);
  CHECK(status_b.rows.at("docs") == 1);
  CHECK(status_b.rows.at("events") == 3);
  CHECK(status_b.rows.at("work_units") == 0);
}

TEST_CASE("drop_removes_the_tenant_and_cached_handles_fail_with_tenant_not_found") {
  TestSchema db;
  Tenants t(db);
  const auto name = t.fresh("gone");
  auto app = db.builder().tenant_strategy(TenantStrategy::kSchemaPerTenant).build();
  app.ensure_tenant(name);
  auto warm = app.session();
  warm.context().tenant = name;
  warm.store(new_uuid(), Customer{"a@example.com", 1});
  warm.save_changes();  // `app` now caches the tenant

  // Dropped by an operator elsewhere (another store: app's cache still holds it).
  db.builder().build().tenants().drop(name);
  CHECK_FALSE(schema_exists(db, "tenant_" + name));
  CHECK_FALSE(db.store().tenants().find(name));
  CHECK_THROWS_AS(db.store().tenants().drop(name), TenantNotFound);

  auto late = app.session();
  late.context().tenant = name;
  late.store(new_uuid(), Customer{"b@example.com", 2});
  CHECK_THROWS_AS(late.save_changes(), TenantNotFound);
  // Forgotten: the next session fails at the registry look-up.
  CHECK_THROWS_AS(app.tenant(name), TenantNotFound);
}

TEST_CASE("ensure_tenant_needs_the_registry_migration_in_the_base_schema") {
  TestSchema db(/*migrate=*/false);
  CHECK_THROWS_WITH_AS(db.store().ensure_tenant("acme_never"), doctest::Contains("schema-sync"),
                       Error);
  CHECK_FALSE(schema_exists(db, "tenant_acme_never"));
}
