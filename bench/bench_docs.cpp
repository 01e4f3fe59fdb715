// bench_docs: document put / get / query throughput beside raw libpq running the same SQL,
// compiled vs ad-hoc queries, and snapshot vs full-fold aggregate loads.
//
//   bench_docs [--quick] [--durable] [--help]   (DATABASE_URL, else an embedded PostgreSQL)
//
// Every pair runs alternately, best of three rounds each, on one connection per side, single
// threaded over a unix socket or loopback: it measures per-call overhead, not server capacity.
#include <rillflow/rillflow.hpp>

#include "bench_cli.hpp"
#include "documents/query_sql.hpp"
#include "raw_pg.hpp"

#include <libpq-fe.h>
#include <boost/describe.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Customer {
  static constexpr std::string_view kCollection = "customers";
  std::string email;
  std::string status;
  int age = 0;
};
BOOST_DESCRIBE_STRUCT(Customer, (), (email, status, age))

struct Counter {
  std::int64_t n = 0;
  std::int64_t v = 0;
  void apply(const rillflow::EventEnvelope& e) {
    n += e.body.at("by").as_int64();
    v = e.stream_seq;
  }
  std::int64_t version() const { return v; }
};
BOOST_DESCRIBE_STRUCT(Counter, (), (n, v))

struct ActiveCustomers : rillflow::CompiledQuery<Customer> {
  explicit ActiveCustomers(std::string s) : status(std::move(s)) {}
  std::string status;
  void configure(rillflow::DocumentQueryContext& q) const override {
    q.filter(rillflow::Predicate::eq("status", status)).order_by("email").limit(20);
  }
};

using Clock = std::chrono::steady_clock;

// The two sides run interleaved, one operation each in turn (alternating which goes first),
// each operation timed on its own, so both see the same server state (table bloat,
// autovacuum, the GIN pending list, other processes on the machine). After one warm-up round,
// three rounds; a side's figure is its median operation time, which a preempted outlier does
// not move. Returns {first, second} as seconds per operation.
std::pair<double, double> paired(std::size_t ops, const std::function<void(std::size_t)>& first,
                                 const std::function<void(std::size_t)>& second) {
  std::vector<double> a, b;
  for (int round = 0; round < 4; ++round) {
    for (std::size_t i = 0; i < ops; ++i) {
      const bool first_leads = i % 2 == 0;
      const auto t0 = Clock::now();
      first_leads ? first(i) : second(i);
      const auto t1 = Clock::now();
      first_leads ? second(i) : first(i);
      const auto t2 = Clock::now();
      if (round == 0) continue;  // warm-up
      const double lead = std::chrono::duration<double>(t1 - t0).count();
      const double follow = std::chrono::duration<double>(t2 - t1).count();
      (first_leads ? a : b).push_back(lead);
      (first_leads ? b : a).push_back(follow);
    }
  }
  return {bench::percentile(a, 0.5), bench::percentile(b, 0.5)};
}

void report(const bench::Cli& cli, const char* what, std::pair<double, double> t, const char* left,
            const char* right, double target) {
  const double a = 1 / t.first;
  const double b = 1 / t.second;
  std::printf("%-22s %-10s %9.0f ops/s   %-14s %9.0f ops/s   ratio %.2f%s\n", what, left, a, right,
              b, a / b, a / b < target ? "  (below target)" : "");
  cli.result(std::string("documents ") + what + " (" + left + " vs " + right + ")", "ops/s", a, b);
}

}  // namespace

int main(int argc, char** argv) try {
  bench::Cli cli("bench_docs",
                 "Document put / get / query beside raw libpq running the same SQL, compiled vs "
                 "ad-hoc queries, snapshot vs full-fold aggregate loads.");
  cli.parse(argc, argv);
  const bool quick = cli.quick;
  const std::size_t n = quick ? 300 : 3000;
  const auto db = cli.database();
  const std::string& url = db.url();
  const std::string schema = "bench_docs";
  bench::RawPg raw(url);
  raw.exec("drop schema if exists " + schema + " cascade");
  const auto store = rillflow::Store::builder(url).schema(schema).max_connections(1).build();
  store.schema().sync();
  const auto docs = store.docs();
  std::printf("bench_docs: %zu operations per round%s\n", n, quick ? " (--quick)" : "");

  // put: the same upsert statement, prepared on both sides (every round after the warm-up
  // replaces existing documents on both sides).
  std::vector<rillflow::Uuid> ids;
  std::vector<Customer> customers;
  std::vector<std::string> id_texts, bodies;
  for (std::size_t i = 0; i < n; ++i) {
    ids.push_back(rillflow::new_uuid());
    customers.push_back(
        {"c" + std::to_string(i) + "@x", i % 4 == 0 ? "active" : "idle", static_cast<int>(i % 80)});
    id_texts.push_back(rillflow::to_string(ids.back()));
    bodies.push_back(boost::json::serialize(boost::json::value_from(customers.back())));
  }
  const std::string upsert =
      "insert into " + schema +
      ".docs as d (collection, id, doc, version) values ($1, $2::uuid, $3::jsonb, 1) "
      "on conflict (collection, id) do update set doc = excluded.doc, version = d.version + 1, "
      "updated_at = now(), deleted_at = null returning version";
  raw.prepare("put", upsert);
  auto t = paired(
      n, [&](std::size_t i) { docs.put(ids[i], customers[i]); },
      [&](std::size_t i) {
        raw.rows("put", {"customers", id_texts[i], bodies[i]});
      });
  report(cli, "put", t, "rillflow", "raw libpq", 0.85);

  // get: the same select; Rillflow also parses the JSON into the struct.
  raw.prepare("get", "select doc::text, version, deleted_at is not null from " + schema +
                         ".docs where collection = $1 and id = $2::uuid");
  t = paired(
      n, [&](std::size_t i) { docs.get<Customer>(ids[i]); },
      [&](std::size_t i) {
        raw.rows("get", {"customers", id_texts[i]});
      });
  report(cli, "get", t, "rillflow", "raw libpq", 0.85);

  // query: the DSL's SQL, unprepared on both sides (an ad-hoc query), 20 rows each.
  raw.exec("analyze " + schema + ".docs");
  rillflow::DocumentQueryContext ctx("customers");
  ctx.filter(rillflow::Predicate::eq("status", "active")).order_by("email").limit(20);
  rillflow::detail::StoreState state;
  state.quoted_schema = "\"" + schema + "\"";
  const auto sql = rillflow::docs::compile_select(state, ctx, rillflow::docs_detail::Fetch::kAll);
  const std::size_t q = n / 3;
  const auto ad_hoc = [&](std::size_t) {
    docs.query<Customer>()
        .filter(rillflow::Predicate::eq("status", "active"))
        .order_by("email")
        .limit(20)
        .fetch_all();
  };
  const auto compiled = [&](std::size_t) { docs.execute_compiled(ActiveCustomers("active")); };
  t = paired(q, ad_hoc, [&](std::size_t) { raw.query(sql.sql, sql.params); });
  report(cli, "query (ad-hoc)", t, "rillflow", "raw libpq", 0.85);

  // compiled: prepared once per connection; against the raw prepared statement and against
  // building the query each time.
  raw.prepare("query", sql.sql);
  t = paired(q, compiled, [&](std::size_t) { raw.rows("query", sql.params); });
  report(cli, "query (compiled)", t, "rillflow", "raw prepared", 0.85);
  t = paired(q, compiled, ad_hoc);
  report(cli, "compiled vs ad-hoc", t, "compiled", "ad-hoc", 1.0);

  // Aggregates: a 10,000-event stream with a snapshot near its end.
  const rillflow::AggregateRepository<Counter> repo(store);
  const auto stream = rillflow::new_uuid();
  std::vector<rillflow::Event> batch;
  for (int i = 0; i < 1000; ++i) batch.emplace_back("Inc", boost::json::object{{"by", 1}});
  for (int k = 0; k < 10; ++k) repo.commit(stream, rillflow::Expected::any(), batch);
  repo.commit_and_snapshot(stream, repo.load(stream),
                           {rillflow::Event("Inc", boost::json::object{{"by", 1}})}, 1);
  repo.commit(stream, rillflow::Expected::any(),
              {rillflow::Event("Inc", boost::json::object{{"by", 1}})});
  const std::size_t loads = quick ? 5 : 20;
  t = paired(
      loads, [&](std::size_t) { repo.load_with_snapshot(stream); },
      [&](std::size_t) { repo.load(stream); });
  std::printf("%-22s snapshot %9.3f ms/load   full fold %9.3f ms/load   speed-up %.0fx%s\n",
              "aggregate load (10k)", t.first * 1000, t.second * 1000, t.second / t.first,
              t.second / t.first < 20 ? "  (below 20x target)" : "");
  cli.result("aggregate load, 10k events (snapshot vs full fold)", "loads/s", 1 / t.first,
             1 / t.second);

  raw.exec("drop schema if exists " + schema + " cascade");
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_docs failed: " << e.what() << "\n";
  return 1;
}
