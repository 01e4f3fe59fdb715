// Projection catch-up with a batch handler: N events over M streams counted per stream, by
//   (a) a raw batched libpq loop: keyset read of a page, the page summed per stream, ONE unnest
//       upsert, a checkpoint row, one transaction per page;
//   (b) the stream_counts plugin's batch handler through the runtime (ProjectionDaemon, the
//       plugin loaded as rillflowd loads it): the same unnest upsert once per batch;
//   (c) the same plugin with `batch: false`: one upsert per event (the per-event path).
// (a) and (b) run twice each, alternating; prints events/s (best of two), client CPU per event
// and the ratios.
//
//   bench_catchup [--events N] [--streams M] [--batch B] [--quick] [--durable]

#include "bench_cli.hpp"
#include "plugin/plugin_loader.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include <sys/resource.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// N events over M streams, written straight into the tables (seeding is not measured); the
// streams interleave in the feed, so a batch touches many read-model rows.
void seed(bench::RawPg& raw, const std::string& s, std::size_t events, std::size_t streams) {
  const std::size_t per_stream = (events + streams - 1) / streams;
  raw.exec("begin");
  raw.exec("insert into " + s + ".streams (stream_id, version) select gen_random_uuid(), " +
           std::to_string(per_stream) + " from generate_series(1, " + std::to_string(streams) +
           ")");
  raw.exec("insert into " + s +
           ".events (stream_id, stream_seq, event_type, body) "
           "select stream_id, g, 'Ticked', jsonb_build_object('n', g, 'note', 'benchmark') "
           "from generate_series(1, " +
           std::to_string(per_stream) + ") g, " + s + ".streams order by g, stream_id limit " +
           std::to_string(events));
  raw.exec("commit");
  raw.exec("vacuum analyze " + s + ".events");
}

// (a) The baseline: the same envelope columns read, bodies parsed, the page summed per stream
// and written with one unnest upsert, a checkpoint row, one transaction per page.
std::size_t raw_catch_up(const std::string& url, const std::string& s, const std::string& table,
                         std::size_t batch) {
  bench::RawPg raw(url);
  raw.exec("create table " + s + "." + table +
           " (stream_id uuid primary key, events bigint not null, "
           "last_global_seq bigint not null)");
  raw.exec("create table if not exists " + s +
           ".raw_checkpoint (name text primary key, position bigint)");
  raw.exec("insert into " + s + ".raw_checkpoint values ('" + table + "', 0)");
  raw.prepare("read",
              "select global_seq, stream_id::text, stream_seq, event_type, body::text, "
              "headers::text, causation_id::text, correlation_id::text, created_at from " +
                  s + ".events where global_seq > $1 order by global_seq limit $2");
  raw.prepare("apply", "insert into " + s + "." + table +
                           " as t (stream_id, events, last_global_seq) "
                           "select * from unnest($1::uuid[], $2::bigint[], $3::bigint[]) "
                           "on conflict (stream_id) do update set events = t.events + "
                           "excluded.events, last_global_seq = greatest(t.last_global_seq, "
                           "excluded.last_global_seq)");
  raw.prepare("checkpoint", "update " + s + ".raw_checkpoint set position = $1 where name = 'raw'");
  std::size_t total = 0;
  std::string position = "0";
  const std::string limit = std::to_string(batch);
  struct Row {
    std::string id;
    std::int64_t events = 0;
    std::int64_t last = 0;
  };
  std::unordered_map<std::string, std::size_t> index;
  std::vector<Row> rows;
  while (true) {
    raw.exec("begin");
    const auto page = raw.exec_prepared("read", {position.c_str(), limit.c_str()});
    const int n = PQntuples(page.get());
    index.clear();
    rows.clear();
    for (int i = 0; i < n; ++i) {
      const auto body = rillflow::parse_json(
          std::string_view(PQgetvalue(page.get(), i, 4), PQgetlength(page.get(), i, 4)));
      if (!body.is_object()) throw std::runtime_error("body is not an object");
      auto [it, fresh] = index.try_emplace(PQgetvalue(page.get(), i, 1), rows.size());
      if (fresh) rows.push_back({it->first});
      auto& r = rows[it->second];
      ++r.events;
      r.last = std::max<std::int64_t>(r.last, std::atoll(PQgetvalue(page.get(), i, 0)));
    }
    if (n > 0) {
      std::string ids = "{", counts = "{", seqs = "{";
      for (const auto& r : rows) {
        if (ids.size() > 1) ids += ',', counts += ',', seqs += ',';
        ids += r.id;
        counts += std::to_string(r.events);
        seqs += std::to_string(r.last);
      }
      ids += '}', counts += '}', seqs += '}';
      raw.exec_prepared("apply", {ids.c_str(), counts.c_str(), seqs.c_str()});
      position = PQgetvalue(page.get(), n - 1, 0);
    }
    raw.exec_prepared("checkpoint", {position.c_str()});
    raw.exec("commit");
    total += static_cast<std::size_t>(n);
    if (n == 0) break;
  }
  return total;
}

struct Run {
  double seconds = 0;
  double cpu = 0;  // this process's CPU seconds
  std::size_t events = 0;
  double rate() const { return static_cast<double>(events) / seconds; }
};

Run runtime_catch_up(rillflow::Store& store, const std::string& name, bool batch_handler,
                     std::size_t batch) {
  auto handler = rillflow::plugin::load_projection_plugin(
      BENCH_STREAM_COUNTS_PLUGIN, boost::json::object{{"table", name}, {"batch", batch_handler}});
  auto daemon = rillflow::ProjectionDaemon::builder(store)
                    .batch_size(batch)
                    .register_projection(name, handler)
                    .build();
  Run r;
  const double cpu = cpu_seconds();
  const auto t = Clock::now();
  r.events = daemon.run_until_idle().processed;
  r.seconds = seconds_since(t);
  r.cpu = cpu_seconds() - cpu;
  return r;
}

std::int64_t counted(bench::RawPg& raw, const std::string& table) {
  const auto r = raw.exec("select coalesce(sum(events), 0) from " + table);
  return std::atoll(PQgetvalue(r.get(), 0, 0));
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t events = 200000, streams = 1000, batch = 500;
  bench::Cli cli("bench_catchup",
                 "Projection catch-up of a per-stream counter: a raw batched libpq loop, the "
                 "batch handler through the runtime, and the per-event path.");
  cli.option("--events", events, "events to catch up (default 200000; --quick 20000)")
      .option("--streams", streams, "streams they are spread over (default 1000; --quick 200)")
      .option("--batch", batch, "events per batch / page (default 500)");
  cli.parse(argc, argv);
  if (cli.quick) {
    events = std::min<std::size_t>(events, 20000);
    streams = std::min<std::size_t>(streams, 200);
  }
  if (events == 0 || streams == 0 || batch == 0) {
    std::fprintf(stderr, "bench_catchup: --events, --streams and --batch must be positive\n");
    return 2;
  }
  const auto db = cli.database();
  const std::string schema = "bench_catchup_" + std::to_string(getpid());
  const std::string s = "\"" + schema + "\"";
  auto store = rillflow::Store::builder(db.url())
                   .schema(schema)
                   .notify_channel("")
                   .max_connections(4)
                   .build();
  store.schema().sync();
  bench::RawPg raw(db.url());
  auto t = Clock::now();
  seed(raw, s, events, streams);
  std::printf("bench_catchup: %zu events over %zu streams, batch %zu, %s%s (seeded in %.1f s)\n",
              events, streams, batch, cli.durability(), cli.quick ? ", --quick" : "",
              seconds_since(t));

  // (a) and (b) alternate, twice each (a b b a), best of two: neither side gets the cold cache
  // or a quieter moment alone. (c) is much slower and runs once, last.
  const auto raw_run = [&](const std::string& table) {
    Run r;
    const double cpu = cpu_seconds();
    const auto t0 = Clock::now();
    r.events = raw_catch_up(db.url(), s, table, batch);
    r.seconds = seconds_since(t0);
    r.cpu = cpu_seconds() - cpu;
    return r;
  };
  const auto best = [](const Run& x, const Run& y) { return x.seconds <= y.seconds ? x : y; };
  const Run a1 = raw_run("raw_counts_1");
  const Run b1 = runtime_catch_up(store, "counts_batch_1", true, batch);
  const Run b2 = runtime_catch_up(store, "counts_batch_2", true, batch);
  const Run a2 = raw_run("raw_counts_2");
  const Run a = best(a1, a2);
  const Run b = best(b1, b2);
  const Run c = runtime_catch_up(store, "counts_event", false, batch);

  const auto expected = static_cast<std::int64_t>(events);
  for (const auto* table :
       {".raw_counts_1", ".raw_counts_2", ".counts_batch_1", ".counts_batch_2", ".counts_event"}) {
    if (counted(raw, s + table) != expected) {
      std::fprintf(stderr, "bench_catchup: %s counted %lld events, expected %lld\n", table,
                   static_cast<long long>(counted(raw, s + table)),
                   static_cast<long long>(expected));
      return 1;
    }
  }
  for (const Run* r : {&a1, &a2, &b1, &b2, &c}) {
    if (r->events != events) {
      std::fprintf(stderr, "bench_catchup: a run processed %zu of %zu events\n", r->events, events);
      return 1;
    }
  }
  std::printf(
      "runs: raw %.0f, %.0f events/s; batch handler %.0f, %.0f events/s (best of each below)\n",
      a1.rate(), a2.rate(), b1.rate(), b2.rate());
  std::printf("\n%-44s %10s %8s %14s\n", "", "events/s", "seconds", "client us/ev");
  const auto line = [&](const char* what, const Run& r) {
    std::printf("%-44s %10.0f %8.2f %14.2f\n", what, r.rate(), r.seconds,
                r.cpu * 1e6 / static_cast<double>(r.events));
  };
  line("(a) raw libpq loop, one unnest upsert/page", a);
  line("(b) runtime + stream_counts apply_batch", b);
  line("(c) runtime + stream_counts per event", c);
  std::printf("ratio (b) batch / (a) raw         %.2f\n", b.rate() / a.rate());
  std::printf("ratio (c) per-event / (a) raw     %.2f\n", c.rate() / a.rate());
  std::printf("ratio (b) batch / (c) per-event   %.2f\n", b.rate() / c.rate());
  cli.result("projection catch-up, batch handler (stream_counts)", "events/s", b.rate(), a.rate());
  cli.result("projection catch-up, per-event path (stream_counts batch: false)", "events/s",
             c.rate(), a.rate());
  raw.exec("drop schema " + s + " cascade");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_catchup failed: %s\n", e.what());
  return 1;
}
