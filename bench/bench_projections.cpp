// Projection catch-up: Rillflow's runtime beside a raw-libpq loop doing the same reads and the
// same read-model writes in same-sized transactions. Prints events/s and the ratio.
//
//   bench_projections [--events N] [--batch N] [--quick] [--durable] [--help]
// Uses $DATABASE_URL when set, else an embedded PostgreSQL.

#include "bench_cli.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include <libpq-fe.h>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// The trivial projection: a counter per stream.
class Counter : public rillflow::ProjectionHandler {
 public:
  explicit Counter(const std::string& table)
      : sql_("insert into " + table +
             " (stream_id, n) values ($1::uuid, 1) on conflict (stream_id) do update set n = " +
             table + ".n + 1") {}
  void apply(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    txn.exec(sql_, e.stream_id);
  }

 private:
  std::string sql_;  // built once, as the baseline prepares its statement once
};

// The baseline: keyset reads of the same columns, JSON bodies parsed, one upsert per event and a
// checkpoint row, one transaction per batch.
std::size_t raw_catch_up(const std::string& url, const std::string& schema, std::size_t batch) {
  bench::RawPg conn(url);
  const std::string s = "\"" + schema + "\"";
  conn.exec("create table " + s + ".raw_counts (stream_id uuid primary key, n bigint not null)");
  conn.exec("create table " + s +
            ".raw_checkpoint (name text primary key, position bigint not null)");
  conn.exec("insert into " + s + ".raw_checkpoint values ('raw', 0)");
  conn.prepare("read",
               "select global_seq, stream_id::text, stream_seq, event_type, body::text, "
               "headers::text, causation_id::text, correlation_id::text, created_at from " +
                   s + ".events where global_seq > $1 order by global_seq limit $2");
  conn.prepare("apply", "insert into " + s +
                            ".raw_counts (stream_id, n) values ($1::uuid, 1) on conflict "
                            "(stream_id) do update set n = raw_counts.n + 1");
  conn.prepare("checkpoint",
               "update " + s + ".raw_checkpoint set position = $1 where name = 'raw'");
  std::size_t total = 0;
  std::string position = "0";
  const std::string limit = std::to_string(batch);
  while (true) {
    conn.exec("begin");
    const auto page = conn.exec_prepared("read", {position.c_str(), limit.c_str()});
    PGresult* rows = page.get();
    const int n = PQntuples(rows);
    for (int i = 0; i < n; ++i) {
      boost::json::value body = boost::json::parse(PQgetvalue(rows, i, 4));
      (void)body;
      conn.exec_prepared("apply", {PQgetvalue(rows, i, 1)});
    }
    if (n > 0) position = PQgetvalue(rows, n - 1, 0);
    conn.exec_prepared("checkpoint", {position.c_str()});
    conn.exec("commit");
    total += static_cast<std::size_t>(n);
    if (n == 0) break;
  }
  return total;
}

void seed(rillflow::Store& store, std::size_t events) {
  constexpr std::size_t kPerAppend = 1000;
  const std::size_t appends = (events + kPerAppend - 1) / kPerAppend;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (std::size_t a = static_cast<std::size_t>(w); a < appends; a += 4) {
        std::vector<rillflow::Event> batch;
        for (std::size_t i = 0; i < kPerAppend && a * kPerAppend + i < events; ++i) {
          batch.emplace_back("Ticked", boost::json::object{{"n", static_cast<std::int64_t>(i)},
                                                           {"note", "benchmark"}});
        }
        // 100 streams per append so the read model has many rows
        for (std::size_t part = 0; part < batch.size(); part += 10) {
          std::vector<rillflow::Event> slice(
              batch.begin() + static_cast<std::ptrdiff_t>(part),
              batch.begin() + static_cast<std::ptrdiff_t>(std::min(part + 10, batch.size())));
          store.events().append_stream(rillflow::new_uuid(), rillflow::Expected::any(), slice);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t events = 0;
  std::size_t batch = 500;
  bench::Cli cli("bench_projections",
                 "Projection catch-up, one upsert per event (the per-event path), beside a raw "
                 "libpq loop doing the same reads and writes in same-sized transactions.");
  cli.option("--events", events, "events to seed and catch up (default 1000000; --quick 20000)")
      .option("--batch", batch, "events per batch (default 500)");
  cli.parse(argc, argv);
  if (events == 0) events = cli.quick ? 20000 : 1000000;
  if (batch == 0) batch = 500;
  const auto db = cli.database();
  const std::string& url = db.url();
  const std::string schema = "bench_proj_" + std::to_string(getpid());
  const bench::SchemaDropper dropper(url, {schema});
  auto store =
      rillflow::Store::builder(url).schema(schema).notify_channel("").max_connections(8).build();
  store.schema().sync();
  auto t0 = Clock::now();
  seed(store, events);
  const double seed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("seeded %zu events in %.1f s (%.0f events/s, appends of 10 events)\n", events, seed_s,
              static_cast<double>(events) / seed_s);
  {
    bench::RawPg c(url);
    c.exec("create table \"" + schema +
           "\".counts (stream_id uuid primary key, n bigint not null)");
    c.exec("vacuum analyze \"" + schema + "\".events");
  }

  auto daemon =
      rillflow::ProjectionDaemon::builder(store)
          .batch_size(batch)
          .register_projection("counter", std::make_shared<Counter>("\"" + schema + "\".counts"))
          .build();
  t0 = Clock::now();
  const std::size_t processed = daemon.run_until_idle().processed;
  const double rf_s = std::chrono::duration<double>(Clock::now() - t0).count();

  t0 = Clock::now();
  const auto raw = raw_catch_up(url, schema, batch);
  const double raw_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (processed != events || raw != events) {
    std::fprintf(stderr, "mismatch: rillflow %zu, raw %zu, expected %zu\n", processed, raw, events);
    return 1;
  }
  const double rf_rate = static_cast<double>(events) / rf_s;
  const double raw_rate = static_cast<double>(events) / raw_s;
  std::printf("\nprojection catch-up, %zu events, batch %zu, one upsert per event\n", events,
              batch);
  std::printf("%-28s %12s %10s\n", "", "events/s", "seconds");
  std::printf("%-28s %12.0f %10.2f\n", "rillflow ProjectionDaemon", rf_rate, rf_s);
  std::printf("%-28s %12.0f %10.2f\n", "raw libpq loop", raw_rate, raw_s);
  std::printf("%-28s %12.2f\n", "ratio (rillflow / raw)", rf_rate / raw_rate);
  cli.result("projection catch-up, one upsert per event (C++ handler)", "events/s", rf_rate,
             raw_rate);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_projections failed: %s\n", e.what());
  return 1;
}
