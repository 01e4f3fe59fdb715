// bench_events: Rillflow's event store beside a raw-libpq baseline doing the same work on the
// same tables in the same run, printed as ratios (rillflow / baseline).
//
//   appends     W writer threads x batch size B, each thread on its own streams
//   notify      appends with the NOTIFY channel on vs off
//   feed reads  the whole global feed from the start, read_feed vs a keyset scan
//   tail read   one event appended at the head of that feed and read, vs one keyset query
//
// Uses DATABASE_URL when set, otherwise an embedded PostgreSQL (unix socket, fsync off, or on
// with --durable). Every run works in fresh schemas (bench_<pid>, bench_<pid>_feed), dropped at
// the end unless --keep is given.
// Usage: bench_events [--seconds N] [--quick] [--durable] [--feed-events N] [--keep] [--help]

#include "bench_cli.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include <boost/json.hpp>

#include <libpq-fe.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kAppendsPerStream = 50;  // a writer moves to a new random stream this often
constexpr std::size_t kFeedPage = 500;
constexpr const char* kEventType = "OrderPlaced";
constexpr const char* kEventBody = R"({"order_id":123,"amount":42.5,"note":"benchmark"})";
constexpr const char* kNotifyChannel = "rillflow_events";
constexpr const char* kRillflowAppName = "bench_events_rillflow";
constexpr const char* kBaselineAppName = "bench_events_libpq";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds this process has used (the server's work is not in it).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---------------------------------------------------------------------------------------------
// Command line

struct Options {
  double seconds = 3.0;  // per side per cell
  std::int64_t feed_events = 200000;
  bool quick = false;
  bool durable = false;
  bool keep = false;  // leave the schemas behind for inspection
};

Options parse_options(int argc, char** argv) {
  Options opts;
  double seconds = 0;
  std::size_t feed_events = 0;
  bench::Cli cli("bench_events",
                 "Appends (writers x batch sizes), NOTIFY on/off and global feed reads, each "
                 "beside a raw-libpq baseline.");
  cli.option("--seconds", seconds, "measured seconds per side and cell (default 3; --quick 0.5)")
      .option("--feed-events", feed_events,
              "events seeded for the feed read (default 200000; --quick 20000)")
      .flag("--keep", opts.keep, "keep the benchmark schemas (with DATABASE_URL) for inspection");
  cli.parse(argc, argv);
  if (seconds < 0 || seconds > 3600) {
    std::fprintf(stderr, "bench_events: --seconds wants a number in (0, 3600]\n");
    std::exit(2);
  }
  opts.quick = cli.quick;
  opts.durable = cli.durable;
  if (opts.quick) {
    opts.seconds = 0.5;
    opts.feed_events = 20000;
  }
  if (seconds > 0) opts.seconds = seconds;
  if (feed_events > 0) opts.feed_events = static_cast<std::int64_t>(feed_events);
  return opts;
}

// ---------------------------------------------------------------------------------------------
// The baseline's libpq connections (bench/raw_pg.hpp), named so that CpuMeter finds their backends

using bench::PgResult;

class PgConn : public bench::RawPg {
 public:
  explicit PgConn(const std::string& url) : RawPg(url, kBaselineAppName) {}
};

// The minimal correct append: bump the stream's version under its row lock, insert the batch
// with the stream_seq values that version implies, all in one transaction.
class BaselineWriter {
 public:
  BaselineWriter(const std::string& url, const std::string& schema, const std::vector<int>& batches)
      : conn_(url) {
    conn_.prepare("upsert", "insert into " + schema +
                                ".streams (stream_id, version) values ($1::uuid, $2::bigint) "
                                "on conflict (stream_id) do update set version = streams.version "
                                "+ excluded.version returning version");
    for (const int b : batches) conn_.prepare(insert_name(b), insert_sql(schema, b));
  }

  void append(const std::string& stream_id, int batch) {
    const std::string count = std::to_string(batch);
    conn_.exec("begin");
    try {
      const auto up = conn_.exec_prepared("upsert", {stream_id.c_str(), count.c_str()});
      const std::string first =
          std::to_string(std::strtoll(PQgetvalue(up.get(), 0, 0), nullptr, 10) - batch + 1);
      std::vector<const char*> params{stream_id.c_str(), first.c_str()};
      for (int i = 0; i < batch; ++i) {
        params.push_back(kEventType);
        params.push_back(kEventBody);
      }
      conn_.exec_prepared(insert_name(batch), params);
      conn_.exec("commit");
    } catch (...) {
      PQclear(PQexec(conn_.get(), "rollback"));
      throw;
    }
  }

 private:
  static std::string insert_name(int batch) { return "insert_" + std::to_string(batch); }

  // insert ... values ($1, $2 + 0, $3, $4, '{}'), ($1, $2 + 1, $5, $6, '{}'), ...
  static std::string insert_sql(const std::string& schema, int batch) {
    std::string sql = "insert into " + schema +
                      ".events (stream_id, stream_seq, event_type, body, headers) values ";
    for (int i = 0; i < batch; ++i) {
      if (i > 0) sql += ", ";
      sql += "($1::uuid, $2::bigint + " + std::to_string(i) + ", $" + std::to_string(3 + 2 * i) +
             "::text, $" + std::to_string(4 + 2 * i) + "::jsonb, '{}'::jsonb)";
    }
    return sql;
  }

  PgConn conn_;
};

// ---------------------------------------------------------------------------------------------
// Timed parallel runs

struct Throughput {
  std::int64_t events = 0;
  double seconds = 0.0;
  double client_cpu = 0.0;  // seconds of CPU of this process
  double server_cpu = 0.0;  // seconds of CPU of the benchmark's backends (0: unknown)

  Throughput& operator+=(const Throughput& o) {
    events += o.events;
    seconds += o.seconds;
    client_cpu += o.client_cpu;
    server_cpu += o.server_cpu;
    return *this;
  }
  double rate() const { return seconds > 0.0 ? static_cast<double>(events) / seconds : 0.0; }
  double us_per_event(double cpu) const {
    return events > 0 ? cpu * 1e6 / static_cast<double>(events) : 0.0;
  }
};

// CPU time of this process and of the server backends serving the benchmark's connections.
// Wall-clock throughput suffers when other processes share the cores; CPU per event much less.
// The server part needs the server on this host (the embedded one always is).
class CpuMeter {
 public:
  struct Sample {
    double client = 0.0;
    double server = 0.0;
  };

  // Call once every connection is open: later ones are not counted.
  void track_backends(PgConn& admin) {
    pids_.clear();
    const auto res = admin.exec(std::string("select pid from pg_stat_activity where ") +
                                "application_name in ('" + kRillflowAppName + "', '" +
                                kBaselineAppName + "') and pid <> pg_backend_pid()");
    for (int r = 0; r < PQntuples(res.get()); ++r) {
      pids_.push_back(std::atoi(PQgetvalue(res.get(), r, 0)));
    }
    for (const int pid : pids_) {
      std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
      std::string name;
      if (!std::getline(comm, name) || name != "postgres") {
        pids_.clear();  // a remote server, or one in another pid namespace
        break;
      }
    }
  }
  bool has_server() const { return !pids_.empty(); }

  Sample now() const {
    Sample out;
    out.client = process_cpu_seconds();
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    for (const int pid : pids_) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      std::getline(stat, line);
      // Fields after "(comm)": state is the 3rd field of the line, utime the 14th, stime 15th.
      std::istringstream fields(line.substr(line.rfind(')') + 2));
      std::string skip;
      for (int i = 3; i < 14; ++i) fields >> skip;
      long long utime = 0;
      long long stime = 0;
      if (!(fields >> utime >> stime)) {
        throw std::runtime_error("cannot read the CPU time of backend " + std::to_string(pid));
      }
      out.server += static_cast<double>(utime + stime) / tick;
    }
    return out;
  }

 private:
  std::vector<int> pids_;
};

// One append of `batch` events to stream `id` (by thread `thread`).
using AppendFn = std::function<void(int thread, const rillflow::Uuid& id, int batch)>;

// `writers` threads append in a loop for `seconds`; appends still in flight at the deadline
// finish and count, and the clock stops when the last thread has joined.
Throughput run_appends(int writers, int batch, double seconds, const AppendFn& append) {
  std::atomic<bool> stop{false};
  std::latch ready(writers + 1);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(writers), 0);
  std::mutex error_mutex;
  std::exception_ptr error;

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(writers));
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      ready.arrive_and_wait();
      try {
        std::int64_t done = 0;
        int in_stream = kAppendsPerStream;
        rillflow::Uuid id{};
        while (!stop.load(std::memory_order_relaxed)) {
          if (in_stream == kAppendsPerStream) {
            id = rillflow::new_uuid();
            in_stream = 0;
          }
          append(t, id, batch);
          ++in_stream;
          done += batch;
        }
        counts[static_cast<std::size_t>(t)] = done;
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        stop = true;
      }
    });
  }
  ready.arrive_and_wait();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (!stop.load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& th : threads) th.join();
  Throughput out;
  out.seconds = seconds_since(start);
  if (error) std::rethrow_exception(error);
  for (const auto c : counts) out.events += c;
  return out;
}

// a and b measured side by side.
struct Comparison {
  Throughput a;
  Throughput b;
  std::vector<double> pair_ratios;  // a/b of each slice pair, sorted

  double median() const {
    if (pair_ratios.empty()) return 0.0;
    const std::size_t n = pair_ratios.size();
    return n % 2 == 1 ? pair_ratios[n / 2] : (pair_ratios[n / 2 - 1] + pair_ratios[n / 2]) / 2.0;
  }
};

// Runs a and b for `seconds` each, cut into slices of about half a second taken in the order
// a b b a a b b a..., so drift and load from other processes (a growing table, autovacuum,
// a compiler on the same cores) hit both sides alike. The spread of the per-pair ratios shows
// how noisy the machine was.
Comparison run_interleaved(int writers, int batch, double seconds, const AppendFn& a,
                           const AppendFn& b, const CpuMeter& cpu) {
  const int pairs = std::max(2, static_cast<int>(seconds / 0.5 + 0.5));
  const double slice = seconds / pairs;
  auto measured = [&](const AppendFn& fn) {
    const auto before = cpu.now();
    Throughput t = run_appends(writers, batch, slice, fn);
    const auto after = cpu.now();
    t.client_cpu = after.client - before.client;
    t.server_cpu = after.server - before.server;
    return t;
  };
  Comparison out;
  for (int i = 0; i < pairs; ++i) {
    Throughput ta;
    Throughput tb;
    if (i % 2 == 0) {
      ta = measured(a);
      tb = measured(b);
    } else {
      tb = measured(b);
      ta = measured(a);
    }
    out.pair_ratios.push_back(tb.rate() > 0.0 ? ta.rate() / tb.rate() : 0.0);
    out.a += ta;
    out.b += tb;
  }
  std::sort(out.pair_ratios.begin(), out.pair_ratios.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Feed reads

struct FeedRead {
  std::int64_t events = 0;
  std::int64_t seq_sum = 0;  // sum of global_seq, to check both sides saw the same events
  double seconds = 0.0;
  double client_cpu = 0.0;  // decoding, JSON parsing, driver overhead
  double server_cpu = 0.0;

  Throughput throughput() const { return Throughput{events, seconds, client_cpu, server_cpu}; }
};

FeedRead read_feed_rillflow(const rillflow::Store& store) {
  FeedRead out;
  const auto start = Clock::now();
  const auto events = store.events();
  rillflow::FeedPosition pos;
  while (true) {
    const auto batch = events.read_feed(pos, kFeedPage);
    for (const auto& e : batch.events) out.seq_sum += e.global_seq;
    out.events += static_cast<std::int64_t>(batch.events.size());
    pos = batch.next;
    if (batch.caught_up && batch.events.empty()) break;
  }
  out.seconds = seconds_since(start);
  return out;
}

FeedRead read_feed_baseline(PgConn& conn) {
  FeedRead out;
  const auto start = Clock::now();
  std::string after = "0";
  while (true) {
    const auto res = conn.exec_prepared("feed_page", {after.c_str()});
    const int rows = PQntuples(res.get());
    if (rows == 0) break;
    for (int r = 0; r < rows; ++r) {
      out.seq_sum += std::strtoll(PQgetvalue(res.get(), r, 0), nullptr, 10);
      // Rillflow hands back parsed envelopes, so the baseline parses the JSON columns too.
      const auto body = boost::json::parse(
          std::string_view(PQgetvalue(res.get(), r, 4), PQgetlength(res.get(), r, 4)));
      const auto headers = boost::json::parse(
          std::string_view(PQgetvalue(res.get(), r, 5), PQgetlength(res.get(), r, 5)));
      if (!body.is_object() || !headers.is_object()) {
        throw std::runtime_error("baseline feed read: body or headers is not a JSON object");
      }
    }
    out.events += rows;
    after = PQgetvalue(res.get(), rows - 1, 0);
  }
  out.seconds = seconds_since(start);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output

std::string with_commas(double value) {
  std::string digits = std::to_string(static_cast<long long>(value + 0.5));
  std::string out;
  const std::size_t n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double ratio(double a, double b) {
  return b > 0.0 ? a / b : 0.0;
}

// "client+server" CPU microseconds per event ("client+?" when the server's is unknown).
std::string cpu_cell(const Throughput& t, bool server_known) {
  char buf[64];
  if (server_known) {
    std::snprintf(buf, sizeof buf, "%.1f+%.1f", t.us_per_event(t.client_cpu),
                  t.us_per_event(t.server_cpu));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f+?", t.us_per_event(t.client_cpu));
  }
  return buf;
}

void print_header(const char* a, const char* b) {
  std::printf("%7s %6s %12s %12s %7s %7s %12s   %s\n", "", "", "", "", "", "", "",
              "CPU us/event (client+server)");
  std::printf("%7s %6s %12s %12s %7s %7s %12s %12s %12s\n", "writers", "batch", a, b, "ratio",
              "median", "pair range", a, b);
}

void print_row(int writers, int batch, const Comparison& c, bool server_known) {
  char range[32];
  std::snprintf(range, sizeof range, "%.2f..%.2f", c.pair_ratios.front(), c.pair_ratios.back());
  std::printf("%7d %6d %12s %12s %7.2f %7.2f %12s %12s %12s\n", writers, batch,
              with_commas(c.a.rate()).c_str(), with_commas(c.b.rate()).c_str(),
              ratio(c.a.rate(), c.b.rate()), c.median(), range, cpu_cell(c.a, server_known).c_str(),
              cpu_cell(c.b, server_known).c_str());
  std::fflush(stdout);
}

std::int64_t query_int(PgConn& conn, const std::string& sql) {
  const auto res = conn.exec(sql);
  return std::strtoll(PQgetvalue(res.get(), 0, 0), nullptr, 10);
}

int run(const Options& opts) {
  std::optional<rillflow::EmbeddedPostgres> embedded;
  std::string url;
  std::string where;
  if (const char* env = std::getenv("DATABASE_URL"); env != nullptr && *env != '\0') {
    url = env;
    where = "DATABASE_URL";
  } else {
    rillflow::EmbeddedPostgresOptions o;
    o.durable = opts.durable;
    embedded = rillflow::EmbeddedPostgres::start(o);
    url = embedded->url();
    where = std::string("embedded PostgreSQL (unix socket, fsync ") +
            (opts.durable ? "on" : "off") + ")";
  }

  // bench_<pid>, or bench_<pid>_<n> when a kept schema of an earlier run has that name: the
  // benchmark only ever drops schemas it created.
  PgConn admin(url);
  std::string schema = "bench_" + std::to_string(::getpid());
  for (int n = 2; query_int(admin, "select count(*) from pg_namespace where nspname in ('" +
                                       schema + "', '" + schema + "_feed')") != 0;
       ++n) {
    schema = "bench_" + std::to_string(::getpid()) + "_" + std::to_string(n);
  }
  const std::string feed_schema = schema + "_feed";
  std::optional<bench::SchemaDropper> dropper;
  if (!opts.keep) dropper.emplace(url, std::vector<std::string>{schema, feed_schema});

  auto build = [&](const std::string& s, const std::string& channel) {
    return rillflow::Store::builder(url)
        .schema(s)
        .notify_channel(channel)
        .max_connections(32)
        .application_name(kRillflowAppName)
        .build();
  };
  const auto store = build(schema, "");
  store.schema().sync();
  const auto notify_store = build(schema, kNotifyChannel);

  const std::vector<int> writer_counts{1, 4, 16};
  const std::vector<int> batch_sizes{1, 10, 100};
  const int max_writers = *std::max_element(writer_counts.begin(), writer_counts.end());

  std::cout << "bench_events: rillflow " << rillflow::version() << ", PostgreSQL "
            << PQparameterStatus(admin.get(), "server_version") << " via " << where << "\n"
            << "schema " << schema << ", " << opts.seconds
            << " s per side per cell, interleaved in ~0.5 s slices (R B B R R B...), "
            << "new random stream every " << kAppendsPerStream << " appends per writer\n"
            << "event body " << kEventBody << "\n\n"
            << std::flush;

  // Appenders. Each side keeps its connections across cells: the store's pool, and one
  // libpq connection per baseline writer thread with its statements prepared.
  const rillflow::Event event(kEventType, rillflow::parse_json(kEventBody));
  auto events_of = [&](int batch) {
    return std::vector<rillflow::Event>(static_cast<std::size_t>(batch), event);
  };
  std::map<int, std::vector<rillflow::Event>> templates;
  for (const int b : batch_sizes) templates.emplace(b, events_of(b));
  auto rillflow_append = [&](const rillflow::Store& s) -> AppendFn {
    const auto es = s.events();
    return [es, &templates](int, const rillflow::Uuid& id, int batch) {
      es.append_stream(id, rillflow::Expected::any(), templates.at(batch));
    };
  };
  std::vector<std::unique_ptr<BaselineWriter>> writers;
  for (int t = 0; t < max_writers; ++t) {
    writers.push_back(std::make_unique<BaselineWriter>(url, schema, batch_sizes));
  }
  const AppendFn baseline_append = [&](int thread, const rillflow::Uuid& id, int batch) {
    writers[static_cast<std::size_t>(thread)]->append(rillflow::to_string(id), batch);
  };
  const AppendFn rillflow_plain = rillflow_append(store);
  const AppendFn rillflow_notify = rillflow_append(notify_store);

  // Warm-up (not reported): opens the pools' connections and prepares every statement.
  std::int64_t appended = 0;
  for (const int b : batch_sizes) {
    appended += run_appends(max_writers, b, 0.2, rillflow_plain).events;
    appended += run_appends(max_writers, b, 0.2, baseline_append).events;
  }
  appended += run_appends(max_writers, 1, 0.2, rillflow_notify).events;
  CpuMeter cpu;
  cpu.track_backends(admin);

  std::printf("Appends (events/s)\n");
  print_header("rillflow", "baseline");
  for (const int w : writer_counts) {
    for (const int b : batch_sizes) {
      const auto c = run_interleaved(w, b, opts.seconds, rillflow_plain, baseline_append, cpu);
      appended += c.a.events + c.b.events;
      print_row(w, b, c, cpu.has_server());
      bench::print_result("bench_events", opts.durable,
                          "appends, " + std::to_string(w) + " writers, batch " + std::to_string(b),
                          "events/s", c.a.rate(), c.b.rate());
    }
  }

  std::printf("\nNOTIFY cost: rillflow appends, batch 1 (events/s)\n");
  print_header("notify on", "notify off");
  for (const int w : {4, 16}) {
    const auto c = run_interleaved(w, 1, opts.seconds, rillflow_notify, rillflow_plain, cpu);
    appended += c.a.events + c.b.events;
    print_row(w, 1, c, cpu.has_server());
    bench::print_result(
        "bench_events", opts.durable,
        "appends with NOTIFY vs without, " + std::to_string(w) + " writers, batch 1", "events/s",
        c.a.rate(), c.b.rate());
  }

  // Both sides wrote to the same tables: every counted event must be there, and every stream's
  // version must equal its event count and its highest stream_seq (no gaps, no duplicates).
  const auto stored = query_int(admin, "select count(*) from " + schema + ".events");
  if (stored != appended) {
    throw std::runtime_error("appends: counted " + std::to_string(appended) +
                             " events but the table holds " + std::to_string(stored));
  }
  const auto bad_streams = query_int(
      admin, "select count(*) from " + schema + ".streams s full join (select stream_id, " +
                 "count(*) as n, max(stream_seq) as top from " + schema +
                 ".events group by stream_id) e using (stream_id) " +
                 "where s.version is distinct from e.n or e.n <> e.top");
  if (bad_streams != 0) {
    throw std::runtime_error("appends: " + std::to_string(bad_streams) +
                             " stream(s) whose version does not match their events");
  }
  std::printf("(checked: %s events in %s, stream versions consistent)\n",
              with_commas(static_cast<double>(stored)).c_str(), schema.c_str());

  // Feed reads, in a schema of their own so the event count is fixed whatever the append rate.
  const auto feed_store = build(feed_schema, "");
  feed_store.schema().sync();
  {
    constexpr int kSeeders = 4;
    constexpr int kSeedBatch = 100;
    const auto per_writer = (opts.feed_events + kSeeders - 1) / kSeeders;
    const auto es = feed_store.events();
    const auto seed = events_of(kSeedBatch);
    std::vector<std::thread> seeders;
    std::mutex error_mutex;
    std::exception_ptr error;
    for (int t = 0; t < kSeeders; ++t) {
      seeders.emplace_back([&] {
        try {
          for (std::int64_t done = 0; done < per_writer;) {
            const int n = static_cast<int>(std::min<std::int64_t>(kSeedBatch, per_writer - done));
            es.append_stream(rillflow::new_uuid(), rillflow::Expected::no_stream(),
                             std::vector<rillflow::Event>(seed.begin(), seed.begin() + n));
            done += n;
          }
        } catch (...) {
          std::lock_guard lock(error_mutex);
          if (!error) error = std::current_exception();
        }
      });
    }
    for (auto& th : seeders) th.join();
    if (error) std::rethrow_exception(error);
  }
  const auto seeded = query_int(admin, "select count(*) from " + feed_schema + ".events");
  admin.exec("vacuum analyze " + feed_schema + ".events");

  PgConn reader(url);
  reader.prepare("feed_page",
                 "select global_seq, stream_id, stream_seq, event_type, body, headers, "
                 "causation_id, correlation_id, created_at from " +
                     feed_schema + ".events where global_seq > $1 order by global_seq limit " +
                     std::to_string(kFeedPage));
  // One untimed pass each first (the first rillflow read also creates the feed's tick and opens
  // the pool's connection), then R B B R timed passes.
  auto read_rillflow = [&] { return read_feed_rillflow(feed_store); };
  auto read_baseline = [&] { return read_feed_baseline(reader); };
  const std::vector<FeedRead> warm{read_rillflow(), read_baseline()};
  cpu.track_backends(admin);
  auto timed = [&](const std::function<FeedRead()>& read) {
    const auto before = cpu.now();
    FeedRead f = read();
    const auto after = cpu.now();
    f.client_cpu = after.client - before.client;
    f.server_cpu = after.server - before.server;
    return f;
  };
  const FeedRead r1 = timed(read_rillflow);
  const FeedRead b1 = timed(read_baseline);
  const FeedRead b2 = timed(read_baseline);
  const FeedRead r2 = timed(read_rillflow);
  for (const auto* f : {&warm[0], &warm[1], &r1, &r2, &b1, &b2}) {
    if (f->events != seeded || f->seq_sum != r1.seq_sum) {
      throw std::runtime_error("feed reads disagree: seeded " + std::to_string(seeded) +
                               " events, a pass read " + std::to_string(f->events) +
                               " (global_seq sum " + std::to_string(f->seq_sum) + " vs " +
                               std::to_string(r1.seq_sum) + ")");
    }
  }
  Throughput r = r1.throughput();
  r += r2.throughput();
  Throughput b = b1.throughput();
  b += b2.throughput();
  std::printf(
      "\nFeed read from the start, pages of %zu (events/s; %s events, 2 timed passes each)\n",
      kFeedPage, with_commas(static_cast<double>(seeded)).c_str());
  std::printf("%12s %12s %7s   %s\n", "", "", "", "CPU us/event (client+server)");
  std::printf("%12s %12s %7s %12s %12s\n", "rillflow", "baseline", "ratio", "rillflow", "baseline");
  std::printf("%12s %12s %7.2f %12s %12s\n", with_commas(r.rate()).c_str(),
              with_commas(b.rate()).c_str(), ratio(r.rate(), b.rate()),
              cpu_cell(r, cpu.has_server()).c_str(), cpu_cell(b, cpu.has_server()).c_str());
  std::printf(
      "(wall s per pass: rillflow %.2f %.2f, baseline %.2f %.2f; untimed first pass: "
      "rillflow %.2f, baseline %.2f; every pass read the same events)\n",
      r1.seconds, r2.seconds, b1.seconds, b2.seconds, warm[0].seconds, warm[1].seconds);
  bench::print_result("bench_events", opts.durable, "global feed reads (vs keyset scan)",
                      "events/s", r.rate(), b.rate());

  // A reader at the head of the feed: one event appended, then read. Its cost must not grow
  // with the table (a batch's scan starts at the batch's first event); the baseline is one keyset
  // query after the last global_seq it saw.
  {
    constexpr int kTailReads = 200;
    const auto es = feed_store.events();
    auto pos = es.feed_end();
    std::string after =
        std::to_string(query_int(admin, "select max(global_seq) from " + feed_schema + ".events"));
    std::vector<double> rill_ms, base_ms;
    const auto one = events_of(1);
    for (int i = 0; i < kTailReads; ++i) {
      es.append_stream(rillflow::new_uuid(), rillflow::Expected::no_stream(), one);
      auto start = Clock::now();
      const auto batch = es.read_feed(pos, kFeedPage);
      rill_ms.push_back(seconds_since(start) * 1000.0);
      start = Clock::now();
      const auto res = reader.exec_prepared("feed_page", {after.c_str()});
      base_ms.push_back(seconds_since(start) * 1000.0);
      if (batch.events.size() != 1 || PQntuples(res.get()) != 1) {
        throw std::runtime_error("tail read: expected the one new event, read " +
                                 std::to_string(batch.events.size()) + " and " +
                                 std::to_string(PQntuples(res.get())));
      }
      pos = batch.next;
      after = PQgetvalue(res.get(), 0, 0);
    }
    const double rm = bench::percentile(rill_ms, 0.5), bm = bench::percentile(base_ms, 0.5);
    std::printf(
        "\nTail read at the head of %s events: append one, read it (median of %d, ms)\n"
        "%12s %12s %7s\n%12.3f %12.3f %7.2f\n"
        "(rillflow probes for news, makes a tick, reads its batch and probes again: 7 round trips "
        "against one)\n",
        with_commas(static_cast<double>(seeded)).c_str(), kTailReads, "rillflow", "baseline",
        "ratio", rm, bm, ratio(bm, rm));
    bench::print_result("bench_events", opts.durable, "tail read of one new event (vs keyset)",
                        "ms", rm, bm, false);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opts = parse_options(argc, argv);
  try {
    return run(opts);
  } catch (const rillflow::Error& e) {
    std::cerr << "bench_events failed [" << rillflow::error_code_name(e.code()) << "]: " << e.what()
              << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_events failed: " << e.what() << "\n";
  }
  return 1;
}
