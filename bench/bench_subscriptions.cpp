// Subscriptions: delivery throughput of one subscriber beside a raw keyset read of the same
// events, a 4-member partitioned group against one member with a 1 ms handler, and the latency
// from an append's commit to the handler with NOTIFY.
//
//   bench_subscriptions [--events N] [--group-events N] [--latency-samples N] [--quick] [--durable]
// Uses $DATABASE_URL when set, else an embedded PostgreSQL.

#include "bench_cli.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include <libpq-fe.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void seed(rillflow::Store& store, std::size_t events, std::size_t per_stream) {
  std::vector<std::thread> writers;
  const std::size_t appends = (events + per_stream - 1) / per_stream;
  for (std::size_t w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (std::size_t a = w; a < appends; a += 4) {
        std::vector<rillflow::Event> batch;
        for (std::size_t i = 0; i < per_stream && a * per_stream + i < events; ++i) {
          batch.emplace_back("Ticked", boost::json::object{{"n", static_cast<std::int64_t>(i)},
                                                           {"note", "benchmark"}});
        }
        store.events().append_stream(rillflow::new_uuid(), rillflow::Expected::any(), batch);
      }
    });
  }
  for (auto& t : writers) t.join();
}

// The baseline: keyset pages of the same envelope columns, bodies and headers parsed.
std::size_t raw_read(const std::string& url, const std::string& schema, std::size_t page) {
  bench::RawPg conn(url);
  conn.prepare("read",
               "select global_seq, stream_id::text, stream_seq, event_type, body::text, "
               "headers::text, causation_id::text, correlation_id::text, created_at from \"" +
                   schema + "\".events where global_seq > $1 order by global_seq limit $2");
  std::size_t total = 0;
  long long last = 0;
  const std::string limit = std::to_string(page);
  for (;;) {
    const std::string after = std::to_string(last);
    const auto result = conn.exec_prepared("read", {after.c_str(), limit.c_str()});
    PGresult* rows = result.get();
    const int n = PQntuples(rows);
    for (int i = 0; i < n; ++i) {
      last = std::atoll(PQgetvalue(rows, i, 0));
      auto body = boost::json::parse(PQgetvalue(rows, i, 4));
      auto headers = boost::json::parse(PQgetvalue(rows, i, 5));
      if (body.is_null() || headers.is_null()) throw std::runtime_error("bad row");
    }
    total += static_cast<std::size_t>(n);
    if (n == 0) break;
  }
  return total;
}

void throughput(const bench::Cli& cli, rillflow::Store& store, const std::string& url,
                const std::string& schema, std::size_t events) {
  seed(store, events, 10);
  auto subs = store.subscriptions();
  rillflow::SubscriptionOptions o;
  o.batch_size = 500;
  auto t0 = Clock::now();
  std::size_t delivered = 0;
  {
    auto [handle, rx] = subs.subscribe("throughput", {}, o);
    std::int64_t sum = 0;
    while (auto e = rx.next(0ms)) {
      sum += e->stream_seq;  // the trivial handler
      ++delivered;
    }
    handle.close();
    if (sum <= 0) throw std::runtime_error("nothing delivered");
  }
  const double sub_s = seconds_since(t0);
  t0 = Clock::now();
  const auto raw = raw_read(url, schema, 500);
  const double raw_s = seconds_since(t0);
  if (delivered != events || raw != events) {
    throw std::runtime_error("mismatch: delivered " + std::to_string(delivered) + ", raw " +
                             std::to_string(raw) + ", expected " + std::to_string(events));
  }
  const double sub_rate = static_cast<double>(events) / sub_s;
  const double raw_rate = static_cast<double>(events) / raw_s;
  std::printf("\ndelivery, %zu events, one subscriber, auto ack, trivial handler\n", events);
  std::printf("%-34s %12s %10s\n", "", "events/s", "seconds");
  std::printf("%-34s %12.0f %10.2f\n", "rillflow subscriber (next + ack)", sub_rate, sub_s);
  std::printf("%-34s %12.0f %10.2f\n", "raw keyset read (libpq)", raw_rate, raw_s);
  std::printf("%-34s %12.2f   (target >= 0.8)\n", "ratio (rillflow / raw)", sub_rate / raw_rate);
  cli.result("subscription delivery, one subscriber (vs raw keyset read)", "events/s", sub_rate,
             raw_rate);
}

// Members of one partitioned group run the 1 ms handler until every event is handled. The
// group is balanced (paused) before the clock starts, so the figure is steady-state work.
double group_run(rillflow::Store& store, const std::string& name, int members, std::size_t events) {
  auto subs = store.subscriptions();
  rillflow::SubscriptionOptions o;
  o.group = "workers";
  o.partitions = 8;
  o.batch_size = 20;
  o.lease_ttl = 900ms;
  o.poll_interval = 50ms;
  subs.create(name, {}, o);
  subs.pause(name);
  std::atomic<std::size_t> handled = 0;
  std::vector<std::pair<rillflow::SubscriptionHandle, rillflow::SubscriptionReceiver>> m;
  for (int i = 0; i < members; ++i) m.push_back(subs.subscribe(name, {}, o));
  std::stop_source stop;
  std::vector<std::thread> threads;
  for (auto& [h, rx] : m) {
    threads.emplace_back([&, rx = rx]() mutable {
      rx.run(
          [&](const rillflow::EventEnvelope&) {
            std::this_thread::sleep_for(1ms);  // the handler's work
            ++handled;
          },
          stop.get_token());
    });
  }
  // Balanced: every partition owned, each member owning partitions / members.
  const auto deadline = Clock::now() + 30s;
  for (;;) {
    std::map<std::string, int> owners;
    for (const auto& p : subs.group_status(name, "workers").partition_owners) {
      if (p.owner) ++owners[*p.owner];
    }
    int owned = 0;
    for (const auto& [k, v] : owners) owned += v;
    if (owned == 8 && static_cast<int>(owners.size()) == members) break;
    if (Clock::now() > deadline) throw std::runtime_error("group did not balance");
    std::this_thread::sleep_for(20ms);  // polling the status for the benchmark's own start
  }
  const auto t0 = Clock::now();
  subs.resume(name);
  while (handled < events) {
    if (Clock::now() - t0 > 600s) throw std::runtime_error("group run did not finish");
    std::this_thread::sleep_for(1ms);
  }
  const double s = seconds_since(t0);
  stop.request_stop();
  for (auto& t : threads) t.join();
  for (auto& [h, rx] : m) h.close();
  return s;
}

void groups(const bench::Cli& cli, rillflow::Store& store, std::size_t events) {
  seed(store, events, 5);
  const double one = group_run(store, "group1", 1, events);
  const double four = group_run(store, "group4", 4, events);
  std::printf("\npartitioned group (8 partitions), %zu events, handler waits 1 ms per event\n",
              events);
  std::printf("%-34s %12s %10s\n", "", "events/s", "seconds");
  std::printf("%-34s %12.0f %10.2f\n", "1 member", static_cast<double>(events) / one, one);
  std::printf("%-34s %12.0f %10.2f\n", "4 members", static_cast<double>(events) / four, four);
  std::printf("%-34s %12.2f   (target >= 3)\n", "speed-up (4 members / 1)", one / four);
  cli.result("subscription group, 4 members vs 1 (1 ms handler)", "events/s",
             static_cast<double>(events) / four, static_cast<double>(events) / one);
}

void latency(const bench::Cli& cli, rillflow::Store& store, std::size_t samples) {
  auto subs = store.subscriptions();
  rillflow::SubscriptionOptions o;
  o.start_from = rillflow::StartFrom::end();
  o.poll_interval = 1000ms;  // NOTIFY wakes it; polling would show as 1 s outliers
  std::mutex mu;
  std::map<std::int64_t, Clock::time_point> received;
  auto [handle, rx] = subs.subscribe("latency", {}, o);
  std::stop_source stop;
  std::thread consumer([&, rx = rx]() mutable {
    rx.run(
        [&](const rillflow::EventEnvelope& e) {
          const auto now = Clock::now();
          std::lock_guard l(mu);
          received[e.global_seq] = now;
        },
        stop.get_token());
  });
  std::this_thread::sleep_for(200ms);  // the consumer is listening and idle
  std::map<std::int64_t, Clock::time_point> committed;
  for (std::size_t i = 0; i < samples; ++i) {
    const auto r = store.events().append_stream(rillflow::new_uuid(), rillflow::Expected::any(),
                                                {rillflow::Event("Ping", 1)});
    committed[r.first_global_seq] = Clock::now();
    std::this_thread::sleep_for(5ms);  // one append at a time, the consumer idle in between
  }
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    {
      std::lock_guard l(mu);
      if (received.size() >= samples) break;
    }
    if (Clock::now() > deadline) throw std::runtime_error("latency: events missing");
    std::this_thread::sleep_for(1ms);
  }
  stop.request_stop();
  consumer.join();
  handle.close();
  std::vector<double> ms;
  for (const auto& [seq, t] : committed) {
    ms.push_back(
        std::max(0.0, std::chrono::duration<double, std::milli>(received[seq] - t).count()));
  }
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) {
    return ms[std::min(ms.size() - 1,
                       static_cast<std::size_t>(q * static_cast<double>(ms.size())))];
  };
  std::printf("\nappend commit -> handler, NOTIFY, %zu samples\n", samples);
  std::printf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms   (target p99 < 5 ms)\n", at(0.5),
              at(0.9), at(0.99), ms.back());
  cli.result("subscription delivery latency p99, NOTIFY", "ms", at(0.99), 0, false);
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t events = 200000, group_events = 2000, samples = 500;
  bench::Cli cli("bench_subscriptions",
                 "Delivery throughput of one subscriber vs a raw keyset read (ratio target >= "
                 "0.8), a 4-member partitioned group vs one member with a 1 ms handler (target "
                 ">= 3x), append commit to handler latency with NOTIFY (target p99 < 5 ms).");
  std::size_t ev = 0, gev = 0, smp = 0;
  cli.option("--events", ev, "events for the throughput run (default 200000; --quick 20000)")
      .option("--group-events", gev, "events for the group run (default 2000; --quick 400)")
      .option("--latency-samples", smp, "latency samples (default 500; --quick 100)");
  cli.parse(argc, argv);
  if (cli.quick) {
    events = 20000;
    group_events = 400;
    samples = 100;
  }
  if (ev > 0) events = ev;
  if (gev > 0) group_events = gev;
  if (smp > 0) samples = smp;
  const auto db = cli.database();
  const std::string& url = db.url();
  const auto schema_for = [](const char* what) {
    return std::string("bench_sub_") + what + "_" + std::to_string(getpid());
  };
  const bench::SchemaDropper dropper(url, {schema_for("tp"), schema_for("grp"), schema_for("lat")});
  {
    auto store = rillflow::Store::builder(url).schema(schema_for("tp")).notify_channel("").build();
    store.schema().sync();
    throughput(cli, store, url, schema_for("tp"), events);
  }
  {
    auto store =
        rillflow::Store::builder(url).schema(schema_for("grp")).max_connections(16).build();
    store.schema().sync();
    groups(cli, store, group_events);
  }
  {
    auto store = rillflow::Store::builder(url).schema(schema_for("lat")).build();
    store.schema().sync();
    latency(cli, store, samples);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_subscriptions failed: %s\n", e.what());
  return 1;
}
