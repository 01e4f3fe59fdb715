// rillflowd measured from outside: delivery latency (append commit -> handler) with NOTIFY and
// with polling only, /health/ready latency while a projection catches up, the daemon's RSS
// idle and under load, and with --tenants N: idle CPU, RSS and one tenant's delivery latency
// with N tenants x 1 projection.
//
//   bench_daemon [--events N] [--samples N] [--tenants N] [--quick] [--durable] [--help]
// Uses $DATABASE_URL when set, else an embedded PostgreSQL.

#include "bench_cli.hpp"
#include "raw_pg.hpp"
#include "support/daemon_process.hpp"

#include <rillflow/rillflow.hpp>

#include <libpq-fe.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using rillflow::e2e::DaemonProcess;
using rillflow::e2e::http_get;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

std::string config(const std::string& schema, bool notify, int poll_ms, const std::string& plugin,
                   int batch, const std::string& name = "bench",
                   const std::string& settings = "{table: bench_totals}") {
  return "database: {url_env: BENCH_DB_URL, require_url: true}\nschema: " + schema +
         "\nhttp: {bind: 127.0.0.1, port: 0}\ndaemon: {notify: " + (notify ? "true" : "false") +
         ", poll_interval_ms: " + std::to_string(poll_ms) + "}\nprojections:\n  - name: " + name +
         "\n    plugin: " + plugin + "\n    batch_size: " + std::to_string(batch) +
         "\n    settings: " + settings + "\n";
}

// Appends one event at a time (idle daemon between them) and reads the handler's timestamps.
std::vector<double> delivery_latencies_ms(rillflow::Store& store, const std::string& url,
                                          const std::string& schema, int samples,
                                          std::chrono::milliseconds gap) {
  const auto first = store.events().head();
  for (int i = 0; i < samples; ++i) {
    store.events().append_stream(rillflow::new_uuid(), rillflow::Expected::any(),
                                 {rillflow::Event("Ping", boost::json::object{{"t", now_us()}})});
    std::this_thread::sleep_for(gap);
  }
  std::vector<double> out;
  bench::RawPg conn(url);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      const auto r = conn.exec("select handled_us - sent_us from \"" + schema +
                               "\".latency where global_seq > " + std::to_string(first));
      if (PQntuples(r.get()) == samples) {
        for (int i = 0; i < PQntuples(r.get()); ++i)
          out.push_back(std::atof(PQgetvalue(r.get(), i, 0)) / 1000.0);
        break;
      }
    } catch (const std::runtime_error&) {
      // the handler has not created its table yet
    }
    std::this_thread::sleep_for(50ms);
  }
  return out;
}

// Whether the daemon's (only) projection has handled every event.
bool caught_up_on(DaemonProcess& d) {
  const auto status = rillflow::parse_json(http_get(d.port(), "/status").body);
  const auto& p = status.at("projections").at(0);
  return p.at("position").as_int64() == p.at("head").as_int64() && p.at("head").as_int64() > 0;
}

// CPU seconds (user + system) the process has used.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt (fields 3-13)
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// rillflowd with `tenants: all` over `tenants` tenants, one projection each.
void bench_tenants(bench::Cli& cli, const std::string& url, const std::vector<std::string>& env,
                   int tenants, int samples) {
  const std::string schema = "bench_tenants_" + std::to_string(getpid());
  const bench::SchemaDropper dropper(url, {schema});
  auto base = rillflow::Store::builder(url).schema(schema).build();
  base.schema().sync();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> names;
  for (int i = 0; i < tenants; ++i) {
    names.push_back("b" + std::to_string(getpid()) + "_" + std::to_string(i));
    base.ensure_tenant(names.back());
  }
  std::printf("\n%d tenants ensured in %.1f s\n", tenants,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  const auto path = rillflow::e2e::write_temp(
      schema + ".yaml", config(schema, true, 1000, BENCH_LATENCY_PLUGIN, 500) + "tenants: all\n");
  DaemonProcess d(RILLFLOWD_PATH, path, env);
  if (!d.wait_ready(120s)) throw std::runtime_error("rillflowd did not become ready:\n" + d.log());
  // Every tenant's unit listed and idle (its first batches done).
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < 300s) {
    const auto status = rillflow::parse_json(http_get(d.port(), "/status").body);
    std::size_t idle = 0;
    for (const auto& p : status.at("projections").as_array())
      idle += p.at("waiting").as_string() == "idle" ? 1 : 0;
    if (idle == static_cast<std::size_t>(tenants)) break;
    std::this_thread::sleep_for(200ms);
  }
  const double cpu0 = cpu_seconds(d.pid());
  const auto w0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(10s);
  const double idle_cpu =
      (cpu_seconds(d.pid()) - cpu0) /
      std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() * 100.0;
  const long rss = rss_kib(d.pid());
  auto one = base.tenant(names.front());
  const auto lat = delivery_latencies_ms(one, url, "tenant_" + names.front(), samples, 10ms);
  std::printf("rillflowd, %d tenants x 1 projection: idle CPU %.1f %% of one core, RSS %ld KiB\n",
              tenants, idle_cpu, rss);
  std::printf("%-34s %9s %9s %9s\n", "", "p50 ms", "p99 ms", "max ms");
  std::printf("%-34s %9.2f %9.2f %9.2f\n", "one tenant, append -> handler",
              bench::percentile(lat, 0.5), bench::percentile(lat, 0.99),
              bench::percentile(lat, 1.0));
  d.signal(SIGTERM);
  d.wait_exit(60s);
  cli.result("rillflowd idle CPU, " + std::to_string(tenants) + " tenants", "% of a core", idle_cpu,
             0, false);
  cli.result("rillflowd RSS, " + std::to_string(tenants) + " tenants", "KiB",
             static_cast<double>(rss), 0, false);
  cli.result("one tenant's delivery latency p99, " + std::to_string(tenants) + " tenants", "ms",
             bench::percentile(lat, 0.99), 0, false);
  for (const auto& n : names) base.tenants().drop(n);
}

void seed(rillflow::Store& store, std::size_t events) {
  std::vector<std::thread> writers;
  const std::size_t appends = events / 100;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      std::vector<rillflow::Event> batch;
      for (int i = 0; i < 100; ++i)
        batch.emplace_back("OrderPlaced", boost::json::object{{"total", 1}});
      for (std::size_t a = static_cast<std::size_t>(w); a < appends; a += 4) {
        store.events().append_stream(rillflow::new_uuid(), rillflow::Expected::any(), batch);
      }
    });
  }
  for (auto& t : writers) t.join();
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t events = 0;
  int samples = 0;
  int tenants = -1;
  bench::Cli cli("bench_daemon",
                 "rillflowd from outside: delivery latency with NOTIFY and polling only, "
                 "/health/ready latency while a projection catches up, the daemon's RSS.");
  cli.option("--events", events, "events to catch up (default 1000000; --quick 20000)")
      .option("--samples", samples, "delivery latency samples (default 300; --quick 40)")
      .option("--tenants", tenants,
              "also run rillflowd over N tenants x 1 projection: idle CPU, RSS, one tenant's "
              "delivery latency (default 200; --quick 3; 0 skips it)");
  cli.parse(argc, argv);
  if (events == 0) events = cli.quick ? 20000 : 1000000;
  if (samples <= 0) samples = cli.quick ? 40 : 300;
  if (tenants < 0) tenants = cli.quick ? 3 : 200;
  const auto db = cli.database();
  const std::string& url = db.url();
  const std::vector<std::string> env{"BENCH_DB_URL=" + url};

  // 1. Delivery latency, NOTIFY on (a slow 1 s poll, so NOTIFY does the work) and polling only.
  std::printf("delivery latency, append commit -> handler, %d single-event appends, idle daemon\n",
              samples);
  std::printf("%-34s %9s %9s %9s\n", "", "p50 ms", "p99 ms", "max ms");
  for (const bool notify : {true, false}) {
    const std::string schema =
        std::string("bench_lat_") + (notify ? "notify_" : "poll_") + std::to_string(getpid());
    const bench::SchemaDropper dropper(url, {schema});
    auto store = rillflow::Store::builder(url).schema(schema).build();
    store.schema().sync();
    const auto path = rillflow::e2e::write_temp(
        schema + ".yaml", config(schema, notify, notify ? 1000 : 100, BENCH_LATENCY_PLUGIN, 500));
    DaemonProcess d(RILLFLOWD_PATH, path, env);
    if (!d.wait_ready()) throw std::runtime_error("rillflowd did not become ready:\n" + d.log());
    std::this_thread::sleep_for(300ms);
    const auto lat = delivery_latencies_ms(store, url, schema, notify ? samples : samples / 2,
                                           notify ? 10ms : 37ms);
    std::printf("%-34s %9.2f %9.2f %9.2f\n",
                notify ? "NOTIFY (poll 1000 ms as fallback)" : "polling only (every 100 ms)",
                bench::percentile(lat, 0.5), bench::percentile(lat, 0.99),
                bench::percentile(lat, 1.0));
    cli.result(notify ? "rillflowd delivery latency p99, NOTIFY"
                      : "rillflowd delivery latency p99, polling every 100 ms",
               "ms", bench::percentile(lat, 0.99), 0, false);
    if (notify) std::printf("%-34s %9ld KiB\n", "daemon RSS, idle", rss_kib(d.pid()));
    d.signal(SIGTERM);
    d.wait_exit(30s);
  }

  // 2. /health/ready latency and RSS while a projection catches up.
  const std::string schema = "bench_catchup_" + std::to_string(getpid());
  const bench::SchemaDropper dropper(url, {schema});
  auto store = rillflow::Store::builder(url).schema(schema).notify_channel("").build();
  store.schema().sync();
  const auto t0 = std::chrono::steady_clock::now();
  seed(store, events);
  std::printf("\nseeded %zu events in %.1f s\n", events,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  const auto path = rillflow::e2e::write_temp(
      schema + ".yaml", config(schema, true, 1000, BENCH_ORDER_TOTALS_PLUGIN, 500));
  DaemonProcess d(RILLFLOWD_PATH, path, env);
  if (!d.wait_ready()) throw std::runtime_error("rillflowd did not become ready:\n" + d.log());
  const auto started = std::chrono::steady_clock::now();
  std::vector<double> health;
  long rss_max = 0;
  bool caught_up = false;
  while (!caught_up && std::chrono::steady_clock::now() - started < 600s) {
    for (int i = 0; i < 50; ++i) {
      const auto a = std::chrono::steady_clock::now();
      const auto r = http_get(d.port(), "/health/ready");
      health.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
      if (r.status != 200)
        throw std::runtime_error("/health/ready answered " + std::to_string(r.status));
    }
    rss_max = std::max(rss_max, rss_kib(d.pid()));
    caught_up = caught_up_on(d);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "catch-up of %zu events by rillflowd (order_totals plugin, batch 500): %.1f s, %.0f "
      "events/s\n",
      events, secs, static_cast<double>(events) / secs);
  std::printf("%-34s %9s %9s %9s\n", "", "p50 ms", "p99 ms", "max ms");
  std::printf("%-34s %9.2f %9.2f %9.2f  (%zu requests)\n", "/health/ready during catch-up",
              bench::percentile(health, 0.5), bench::percentile(health, 0.99),
              bench::percentile(health, 1.0), health.size());
  std::printf("%-34s %9ld KiB\n", "daemon RSS, max under load", rss_max);
  d.signal(SIGTERM);
  d.wait_exit(30s);
  cli.result("rillflowd catch-up, order_totals plugin (per event)", "events/s",
             static_cast<double>(events) / secs, 0);
  cli.result("/health/ready p99 during catch-up", "ms", bench::percentile(health, 0.99), 0, false);

  // 3. The same events caught up by rillflowd with the stream_counts batch handler.
  const auto counts_path = rillflow::e2e::write_temp(
      schema + "_counts.yaml", config(schema, true, 1000, BENCH_STREAM_COUNTS_PLUGIN, 500,
                                      "bench_counts", "{table: bench_counts, batch: true}"));
  DaemonProcess dc(RILLFLOWD_PATH, counts_path, env);
  if (!dc.wait_ready()) throw std::runtime_error("rillflowd did not become ready:\n" + dc.log());
  const auto counts_started = std::chrono::steady_clock::now();
  while (!caught_up_on(dc) && std::chrono::steady_clock::now() - counts_started < 600s) {
    std::this_thread::sleep_for(20ms);
  }
  const double counts_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - counts_started).count();
  std::printf(
      "catch-up of %zu events by rillflowd (stream_counts batch handler, batch 500): %.1f s, "
      "%.0f events/s\n",
      events, counts_secs, static_cast<double>(events) / counts_secs);
  dc.signal(SIGTERM);
  dc.wait_exit(30s);
  cli.result("rillflowd catch-up, stream_counts plugin (batch handler)", "events/s",
             static_cast<double>(events) / counts_secs, 0);
  if (tenants > 0) bench_tenants(cli, url, env, tenants, samples);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_daemon failed: %s\n", e.what());
  return 1;
}
