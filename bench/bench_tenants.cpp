// bench_tenants: provisioning many tenants with Store::ensure_tenant (time per tenant, what the
// catalog grows by), beside raw libpq running the same migration DDL; the cached paths a
// session takes; and how N rillflowd runtimes spread T tenants with the deterministic
// assignment (runtime::Membership::assign), the numbers in docs/scale-out.md.
//
//   bench_tenants [--quick] [--durable] [--tenants N] [--help]
//   (DATABASE_URL, else an embedded PostgreSQL)
//
// Single threaded, one connection, over a unix socket or loopback.
#include "bench_cli.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include "runtime/membership.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Catalog {
  long long relations = 0;   // pg_class rows
  long long attributes = 0;  // pg_attribute rows
  long long catalog_bytes = 0;
  long long database_bytes = 0;
};

Catalog catalog(bench::RawPg& conn) {
  const auto r = conn.exec(
      "select (select count(*) from pg_class), (select count(*) from pg_attribute), "
      "(select sum(pg_total_relation_size(c.oid)) from pg_class c join "
      "pg_namespace n on n.oid = c.relnamespace where n.nspname = 'pg_catalog'), "
      "pg_database_size(current_database())");
  return Catalog{std::atoll(PQgetvalue(r.get(), 0, 0)), std::atoll(PQgetvalue(r.get(), 0, 1)),
                 std::atoll(PQgetvalue(r.get(), 0, 2)), std::atoll(PQgetvalue(r.get(), 0, 3))};
}

// Units per runtime when `runtimes` share `units`, from the assignment every runtime computes.
std::vector<std::size_t> spread(const std::vector<rillflow::runtime::UnitKey>& units,
                                const std::vector<std::string>& runtimes) {
  std::vector<std::size_t> out;
  for (const auto& self : runtimes) {
    out.push_back(rillflow::runtime::Membership::assign(units, runtimes, self).size());
  }
  return out;
}

std::vector<std::string> runtimes_of(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("node-" + std::to_string(i) + ":1:r" + std::to_string(i));
  return out;
}

// Who runs each unit.
std::map<rillflow::runtime::UnitKey, std::string> owners(
    const std::vector<rillflow::runtime::UnitKey>& units,
    const std::vector<std::string>& runtimes) {
  std::map<rillflow::runtime::UnitKey, std::string> out;
  for (const auto& self : runtimes) {
    for (const auto& u : rillflow::runtime::Membership::assign(units, runtimes, self))
      out[u] = self;
  }
  return out;
}

void simulate(bool quick) {
  std::cout << "\nassignment of T tenants x 1 projection to N runtimes "
               "(runtime::Membership::assign)\n";
  std::cout << "   T   N | one unit list (kind, tenant/projection): min-max per runtime, moved "
               "on N->N+1 | per-schema lists: min-max\n";
  const std::vector<int> tenant_counts =
      quick ? std::vector<int>{10, 200} : std::vector<int>{10, 200, 1000, 5000};
  for (const int t : tenant_counts) {
    std::vector<rillflow::runtime::UnitKey> units;
    for (int i = 0; i < t; ++i) {
      units.push_back({"projection", "tenant_t" + std::to_string(i) + "/orders"});
    }
    for (const int n : {1, 2, 3, 4, 8}) {
      const auto live = runtimes_of(n);
      const auto counts = spread(units, live);
      const auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
      // Join of one runtime: how many units change owner.
      const auto before = owners(units, live);
      const auto after = owners(units, runtimes_of(n + 1));
      std::size_t moved = 0;
      for (const auto& [u, who] : before) moved += after.at(u) != who ? 1 : 0;
      // Each tenant's schema assigning its own one-unit list (rendezvous: still spread).
      std::vector<std::size_t> per_schema(static_cast<std::size_t>(n), 0);
      for (const auto& u : units) {
        for (std::size_t r = 0; r < live.size(); ++r) {
          per_schema[r] += rillflow::runtime::Membership::assign({u}, live, live[r]).size();
        }
      }
      const auto [plo, phi] = std::minmax_element(per_schema.begin(), per_schema.end());
      std::printf("%5d %3d | %6zu-%-6zu moved %5zu (%5.1f%%) | %6zu-%zu\n", t, n, *lo, *hi, moved,
                  100.0 * static_cast<double>(moved) / t, *plo, *phi);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int tenants = 0;
  bench::Cli cli("bench_tenants",
                 "Provisions N tenants with Store::ensure_tenant: time per tenant and catalog "
                 "growth, a raw-libpq baseline running the same migration DDL, the cached paths, "
                 "and the assignment simulation of docs/scale-out.md.");
  cli.option("--tenants", tenants, "tenants to provision (default 1000; --quick 20)");
  cli.parse(argc, argv);
  const bool quick = cli.quick;
  if (tenants <= 0) tenants = quick ? 20 : 1000;
  // PostgreSQL's NOTICEs (drop cascades to ...) are not the benchmark's output.
  rillflow::set_database_notice_sink([](std::string_view message) {
    if (!message.starts_with("NOTICE")) std::cerr << message << "\n";
  });
  try {
    auto db = cli.database();
    const std::string base = "bench_tenants_base";
    bench::RawPg conn(db.url());
    conn.exec("set client_min_messages = warning");
    // Leftovers of an interrupted run.
    conn.exec(
        "do $$ declare s text; begin for s in select nspname from pg_namespace "
        "where nspname like 'tenant_bench%' or nspname like 'bench_raw_%' or "
        "nspname = 'bench_tenants_base' loop execute format('drop schema %I "
        "cascade', s); end loop; end $$");
    auto store = rillflow::Store::builder(db.url()).schema(base).max_connections(2).build();
    store.schema().sync();
    std::cout << "bench_tenants: " << tenants << " tenants" << (quick ? " (quick)" : "")
              << (db.embedded() ? ", embedded PostgreSQL" : "") << "\n";

    const auto before = catalog(conn);
    std::vector<double> each;
    const auto all_start = Clock::now();
    // Raw baseline, interleaved (every 20th tenant; 4th with --quick) so both sides see the same
    // catalog size and machine load: the same migration script, run through libpq into a fresh
    // schema.
    std::vector<double> raw;
    for (int i = 0; i < tenants; ++i) {
      const auto start = Clock::now();
      store.ensure_tenant("bench" + std::to_string(i));
      each.push_back(ms_since(start));
      if (i % (quick ? 4 : 20) == 0) {
        const auto script = store.with_schema("bench_raw_" + std::to_string(i)).schema().plan_sql();
        const auto raw_start = Clock::now();
        conn.exec("begin; " + script + " commit;");
        raw.push_back(ms_since(raw_start));
      }
    }
    double total_ms = 0;
    for (const double ms : each) total_ms += ms;
    (void)all_start;
    const int raw_n = static_cast<int>(raw.size());
    const auto after = catalog(conn);

    // The paths a session takes afterwards: cached ensure, and a cold look-up (another store).
    std::vector<double> cached;
    for (int i = 0; i < tenants; ++i) {
      const auto start = Clock::now();
      store.ensure_tenant("bench" + std::to_string(i));
      cached.push_back(ms_since(start));
    }
    auto other = rillflow::Store::builder(db.url()).schema(base).max_connections(1).build();
    std::vector<double> lookup;
    for (int i = 0; i < std::min(tenants, 200); ++i) {
      const auto start = Clock::now();
      other.tenant("bench" + std::to_string(i));
      lookup.push_back(ms_since(start));
    }

    const double per = total_ms / tenants;
    const double raw_p50 = bench::percentile(raw, 0.5);
    std::printf("ensure_tenant x %d: %.1f s total, %.2f ms per tenant (p50 %.2f, p99 %.2f)\n",
                tenants, total_ms / 1000, per, bench::percentile(each, 0.5),
                bench::percentile(each, 0.99));
    std::printf("raw libpq, same DDL x %d: p50 %.2f ms per schema; ratio ensure/raw %.2f\n", raw_n,
                raw_p50, bench::percentile(each, 0.5) / raw_p50);
    cli.result("ensure_tenant p50 (vs the same DDL through libpq)", "ms",
               bench::percentile(each, 0.5), raw_p50, false);
    std::printf("cached ensure_tenant: p50 %.4f ms; cold Store::tenant look-up: p50 %.3f ms\n",
                bench::percentile(cached, 0.5), bench::percentile(lookup, 0.5));
    // Per schema: the raw baseline's schemas hold the same tables, so they count as schemas too.
    const double n = tenants + raw_n;
    std::printf(
        "catalog: +%.1f relations and +%.1f attributes per schema (%d schemas: %lld "
        "relations)\n",
        (after.relations - before.relations) / n, (after.attributes - before.attributes) / n,
        tenants + raw_n, after.relations - before.relations);
    std::printf(
        "pg_catalog size: %.1f MB -> %.1f MB (+%.1f kB per schema); database %.1f MB -> "
        "%.1f MB (+%.1f kB per schema)\n",
        before.catalog_bytes / 1e6, after.catalog_bytes / 1e6,
        (after.catalog_bytes - before.catalog_bytes) / n / 1e3, before.database_bytes / 1e6,
        after.database_bytes / 1e6, (after.database_bytes - before.database_bytes) / n / 1e3);

    simulate(quick);

    const auto drop_start = Clock::now();
    for (int i = 0; i < tenants; ++i) store.tenants().drop("bench" + std::to_string(i));
    std::printf("\ndrop x %d: %.2f ms per tenant\n", tenants, ms_since(drop_start) / tenants);
    conn.exec(
        "do $$ declare s text; begin for s in select nspname from pg_namespace "
        "where nspname like 'bench_raw_%' or nspname = 'bench_tenants_base' loop "
        "execute format('drop schema %I cascade', s); end loop; end $$");
  } catch (const std::exception& e) {
    std::cerr << "bench_tenants: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
