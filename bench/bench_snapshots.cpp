// bench_snapshots: background compaction rate (streams/s) of rillflow::Snapshotter beside a
// raw-libpq baseline doing the same work (read each stream's events, fold them, upsert the
// snapshot), and aggregate load time with and without a snapshot at a few stream lengths.
//
//   bench_snapshots [--quick] [--durable] [--streams N] [--events N] [--help]
//                   (DATABASE_URL, else an embedded PostgreSQL for the run)
//
// Default: 10,000 streams of 300 events, threshold 200, batch 200. Both sides run on one
// connection, single threaded, twice each, alternating which goes first; between runs the
// snapshots are dropped so every run compacts every stream. The baseline is given the list of
// streams (it does no candidate search, holds no lease and does not maintain
// streams.snapshot_version): what Rillflow adds on top of the bare work is the ratio.
#include "bench_cli.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include <libpq-fe.h>
#include <unistd.h>
#include <boost/describe.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

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

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

using bench::RawPg;

// Streams of `events` Inc events each (body {"by": 1}), written straight into the tables
// (seeding is not what is measured).
void seed(RawPg& raw, const std::string& schema, std::size_t streams, std::size_t events) {
  raw.exec("insert into \"" + schema +
           "\".streams (stream_id, version) select gen_random_uuid(), " + std::to_string(events) +
           " from generate_series(1, " + std::to_string(streams) + ")");
  raw.exec("insert into \"" + schema +
           "\".events (stream_id, stream_seq, event_type, body) "
           "select s.stream_id, g, 'Inc', '{\"by\": 1}'::jsonb from \"" +
           schema + "\".streams s, generate_series(1, " + std::to_string(events) + ") g");
  raw.exec("vacuum analyze \"" + schema + "\".events");
  raw.exec("vacuum analyze \"" + schema + "\".streams");
}

void drop_snapshots(RawPg& raw, const std::string& schema) {
  raw.exec("truncate \"" + schema + "\".snapshots");
  raw.exec("update \"" + schema + "\".streams set snapshot_version = 0");
  raw.exec("vacuum analyze \"" + schema + "\".streams");
}

double run_snapshotter(const rillflow::Store& store, std::size_t streams) {
  rillflow::SnapshotterConfig c;
  c.threshold_events = 200;
  c.batch_size = 200;
  c.name = "bench";
  rillflow::Snapshotter s(store, std::make_shared<rillflow::AggregateFolder<Counter>>(), c);
  const auto t = Clock::now();
  const auto r = s.run_until_idle();
  const double secs = seconds_since(t);
  if (r.written != streams || !r.failures.empty()) {
    throw std::runtime_error("the snapshotter wrote " + std::to_string(r.written) + " of " +
                             std::to_string(streams) + " snapshots");
  }
  return static_cast<double>(streams) / secs;
}

double run_baseline(RawPg& raw, const std::vector<std::string>& ids) {
  const auto t = Clock::now();
  for (const auto& id : ids) {
    const auto rows = raw.rows("read", {id}, 2);
    Counter c;
    for (const auto& row : rows) {
      const auto body = boost::json::parse(row[1]);
      c.n += body.at("by").as_int64();
      c.v = std::stoll(row[0]);
    }
    raw.rows("upsert",
             {id, std::to_string(c.v), boost::json::serialize(boost::json::value_from(c))});
  }
  return static_cast<double>(ids.size()) / seconds_since(t);
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t streams = 10000, events = 300;
  bench::Cli cli("bench_snapshots",
                 "Compaction rate (streams/s) of rillflow::Snapshotter beside raw libpq doing the "
                 "same work, and aggregate load time with and without a snapshot.");
  cli.option("--streams", streams, "streams to compact (default 10000; --quick 300)")
      .option("--events", events, "events per stream (default 300, at least 200)");
  cli.parse(argc, argv);
  const bool quick = cli.quick;
  if (quick) streams = std::min<std::size_t>(streams, 300);
  if (events < 200 || streams == 0) {
    std::fprintf(stderr, "bench_snapshots: --events must be at least 200, --streams 1 or more\n");
    return 2;
  }
  const auto db = cli.database();
  const std::string& url = db.url();
  const std::string schema = "bench_snap_" + std::to_string(getpid());
  auto store = rillflow::Store::builder(url).schema(schema).max_connections(2).build();
  store.schema().sync();
  RawPg raw(url);
  auto t = Clock::now();
  seed(raw, schema, streams, events);
  std::printf("bench_snapshots: %zu streams of %zu events (seeded in %.1f s)%s\n", streams, events,
              seconds_since(t), quick ? " (--quick)" : "");

  std::vector<std::string> ids;
  raw.prepare("ids", "select stream_id::text from \"" + schema + "\".streams");
  for (const auto& row : raw.rows("ids", {})) ids.push_back(row[0]);
  raw.prepare("read", "select stream_seq, body::text from \"" + schema +
                          "\".events where stream_id = $1::uuid order by stream_seq");
  raw.prepare("upsert", "insert into \"" + schema +
                            "\".snapshots as n (stream_id, version, body) values ($1::uuid, $2, "
                            "$3::jsonb) on conflict (stream_id) do update set version = "
                            "excluded.version, body = excluded.body, created_at = now()");

  double best_lib = 0, best_raw = 0;
  for (int round = 0; round < 2; ++round) {
    for (int side = 0; side < 2; ++side) {
      drop_snapshots(raw, schema);
      if ((side + round) % 2 == 0) {
        best_lib = std::max(best_lib, run_snapshotter(store, streams));
      } else {
        best_raw = std::max(best_raw, run_baseline(raw, ids));
      }
    }
  }
  std::printf(
      "compaction: rillflow %.0f streams/s (%.0f events/s folded), raw libpq %.0f "
      "streams/s, ratio %.2f\n",
      best_lib, best_lib * static_cast<double>(events), best_raw, best_lib / best_raw);
  cli.result("snapshot compaction (" + std::to_string(events) + " events per stream)", "streams/s",
             best_lib, best_raw);

  // Load time at a few lengths: a full fold vs the snapshot plus the events after it.
  const rillflow::AggregateRepository<Counter> repo(store);
  const std::vector<std::size_t> lengths =
      quick ? std::vector<std::size_t>{100, 1000} : std::vector<std::size_t>{100, 1000, 10000};
  for (const auto length : lengths) {
    const std::string alias = "load:" + std::to_string(length) + ":";
    const auto id = store.resolve_stream_alias(alias);
    for (std::size_t done = 0; done < length;) {
      std::vector<rillflow::Event> batch;
      for (; batch.size() < 1000 && done < length; ++done)
        batch.emplace_back("Inc", boost::json::object{{"by", 1}});
      store.events().append_stream(id, rillflow::Expected::any(), std::move(batch));
    }
    rillflow::SnapshotterConfig c;
    c.threshold_events = static_cast<std::int64_t>(length) - 10;  // leave a tail of 10
    c.name = "bench-load";
    c.streams.alias_prefix = alias;  // not the streams of the compaction runs
    const auto head = store.events().stream_version(id).value_or(0);
    // Compact at length - 10, then append the last 10, so the load reads a tail.
    {
      rillflow::Snapshotter s(store, std::make_shared<rillflow::AggregateFolder<Counter>>(), c);
      s.compact_once();
    }
    if (head != static_cast<std::int64_t>(length)) throw std::runtime_error("seeding failed");
    std::vector<rillflow::Event> tail;
    for (int i = 0; i < 10; ++i) tail.emplace_back("Inc", boost::json::object{{"by", 1}});
    store.events().append_stream(id, rillflow::Expected::any(), std::move(tail));
    std::vector<double> full, snap;
    const int reps = length >= 10000 ? 7 : 21;
    for (int i = 0; i < reps; ++i) {
      auto t0 = Clock::now();
      const auto a = repo.load(id);
      full.push_back(seconds_since(t0));
      t0 = Clock::now();
      const auto b = repo.load_with_snapshot(id);
      snap.push_back(seconds_since(t0));
      if (a.n != b.n || a.n != static_cast<std::int64_t>(length) + 10)
        throw std::runtime_error("loads disagree");
    }
    std::printf("load %6zu events: full fold %.2f ms, snapshot + 10-event tail %.2f ms (%.1fx)\n",
                length + 10, bench::percentile(full, 0.5) * 1000.0,
                bench::percentile(snap, 0.5) * 1000.0,
                bench::percentile(full, 0.5) / bench::percentile(snap, 0.5));
  }
  raw.exec("drop schema \"" + schema + "\" cascade");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_snapshots: %s\n", e.what());
  return 1;
}
