// Prepared statements on and off, direct and through a transaction-pooling PgBouncer: append and
// feed-read throughput of rillflow beside a raw-libpq baseline doing the same statements the same
// way (named prepared statements, or unnamed PQexecParams), in the same run, as ratios.
//
// Usage: bench_pooler [--seconds N] [--quick] [--durable] [--help]
//   DATABASE_URL: a direct PostgreSQL (default: an embedded cluster); PgBouncer (Debian's
//   pgbouncer, pool_mode = transaction) is started privately in front of it.

#include "bench_cli.hpp"
#include "raw_pg.hpp"

#include <rillflow/rillflow.hpp>

#include "support/pgbouncer.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWriters = 4;
constexpr int kBatch = 10;
constexpr std::size_t kFeedPage = 500;
constexpr const char* kBody = R"({"sku":"A-1","qty":2,"price":9.5})";

// ---- raw libpq: the same two statements an append needs, named or unnamed -------------------

class Raw {
 public:
  Raw(const std::string& url, std::string schema, bool prepared)
      : conn_(url), schema_(std::move(schema)), prepared_(prepared) {
    upsert_ = "insert into " + schema_ +
              ".streams (stream_id, version) values ($1::uuid, $2::bigint) on conflict "
              "(stream_id) do update set version = streams.version + excluded.version "
              "returning version";
    insert_ = "insert into " + schema_ +
              ".events (stream_id, stream_seq, event_type, body, headers) select $1::uuid, "
              "$2::bigint + i, 'Bench', $3::jsonb, '{}'::jsonb from generate_series(0, $4::int "
              "- 1) i";
    // The columns an envelope has; the body is parsed as rillflow parses it.
    feed_ =
        "select global_seq, stream_id, stream_seq, event_type, body, headers, causation_id, "
        "correlation_id, created_at from " +
        schema_ + ".events where global_seq > $1::bigint order by global_seq limit " +
        std::to_string(kFeedPage);
    if (prepared_) {
      conn_.prepare("upsert", upsert_);
      conn_.prepare("insert", insert_);
      conn_.prepare("feed", feed_);
    }
  }

  void append(const std::string& stream, int n) {
    conn_.exec("begin");
    const std::string count = std::to_string(n);
    const std::string first = [&] {
      const auto r = run("upsert", upsert_, {stream.c_str(), count.c_str()});
      return std::to_string(std::atoll(PQgetvalue(r.get(), 0, 0)) - n + 1);
    }();
    run("insert", insert_, {stream.c_str(), first.c_str(), kBody, count.c_str()});
    conn_.exec("commit");
  }

  std::int64_t read_feed() {
    std::int64_t n = 0;
    std::string after = "0";
    while (true) {
      const auto r = run("feed", feed_, {after.c_str()});
      const int rows = PQntuples(r.get());
      for (int i = 0; i < rows; ++i) {
        const auto body = rillflow::parse_json(
            std::string_view(PQgetvalue(r.get(), i, 4), PQgetlength(r.get(), i, 4)));
        if (!body.is_object()) throw std::runtime_error("feed: body is not an object");
      }
      if (rows > 0) after = PQgetvalue(r.get(), rows - 1, 0);
      n += rows;
      if (rows == 0) return n;
    }
  }

 private:
  bench::PgResult run(const char* name, const std::string& sql,
                      const std::vector<const char*>& params) {
    return prepared_ ? conn_.exec_prepared(name, params) : conn_.exec_params(sql, params);
  }
  bench::RawPg conn_;
  std::string schema_, upsert_, insert_, feed_;
  bool prepared_;
};

// ---- one configuration: a store and its baseline on the same path -----------------------------

struct Side {
  std::string name;
  std::function<void(int writer, const rillflow::Uuid&)> append;
  std::function<std::int64_t()> read_feed;
  std::int64_t events = 0;
  double seconds = 0;
  double feed_events = 0, feed_seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(events) / seconds : 0; }
  double feed_rate() const { return feed_seconds > 0 ? feed_events / feed_seconds : 0; }
};

void run_slice(Side& side, double seconds) {
  std::atomic<std::int64_t> done{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  std::exception_ptr error;
  std::mutex error_mutex;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      try {
        while (Clock::now() < deadline) {
          side.append(w, rillflow::new_uuid());
          done += kBatch;
        }
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  side.events += done;
  side.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

void time_feed(Side& side) {
  const auto start = Clock::now();
  side.feed_events += static_cast<double>(side.read_feed());
  side.feed_seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

int run(double seconds, const bench::Cli& cli) {
  const bool quick = cli.quick;
  auto db = cli.database();
  rillflow::testing::PgBouncer::Options bouncer_options;
  bouncer_options.pool_size = 8;
  auto bouncer = rillflow::testing::PgBouncer::start(db.url(), bouncer_options);
  const std::string schema = "bench_pooler_" + std::to_string(::getpid());
  auto store = [&](const std::string& url, rillflow::PreparedStatements mode) {
    return rillflow::Store::builder(url)
        .schema(schema)
        .max_connections(kWriters + 1)
        .notify_channel("")
        .prepared_statements(mode)
        .build();
  };
  const auto direct_on = store(db.url(), rillflow::PreparedStatements::kOn);
  direct_on.schema().sync();
  const auto direct_off = store(db.url(), rillflow::PreparedStatements::kOff);
  const auto pooled_off = store(bouncer.url(), rillflow::PreparedStatements::kOff);

  // Raw writers per side (one connection per writer thread) and one raw feed reader.
  auto raws = [&](const std::string& url, bool prepared) {
    auto v = std::make_shared<std::vector<std::unique_ptr<Raw>>>();
    for (int w = 0; w <= kWriters; ++w) v->push_back(std::make_unique<Raw>(url, schema, prepared));
    return v;
  };
  auto rillflow_side = [](std::string name, const rillflow::Store& s) {
    const auto events = s.events();
    const std::vector<rillflow::Event> batch(kBatch,
                                             rillflow::Event("Bench", rillflow::parse_json(kBody)));
    Side side;
    side.name = std::move(name);
    side.append = [events, batch](int, const rillflow::Uuid& id) {
      events.append_stream(id, rillflow::Expected::no_stream(), batch);
    };
    side.read_feed = [events] {
      std::int64_t n = 0;
      rillflow::FeedPosition pos;
      while (true) {
        const auto b = events.read_feed(pos, kFeedPage);
        n += static_cast<std::int64_t>(b.events.size());
        pos = b.next;
        if (b.caught_up && b.events.empty()) return n;
      }
    };
    return side;
  };
  auto raw_side = [](std::string name, std::shared_ptr<std::vector<std::unique_ptr<Raw>>> r) {
    Side side;
    side.name = std::move(name);
    side.append = [r](int w, const rillflow::Uuid& id) {
      (*r)[static_cast<std::size_t>(w)]->append(rillflow::to_string(id), kBatch);
    };
    side.read_feed = [r] { return r->back()->read_feed(); };
    return side;
  };
  std::vector<Side> sides;
  sides.push_back(rillflow_side("rillflow direct, prepared on", direct_on));
  sides.push_back(raw_side("libpq direct, named prepared", raws(db.url(), true)));
  sides.push_back(rillflow_side("rillflow direct, prepared off", direct_off));
  sides.push_back(raw_side("libpq direct, unnamed (PQexecParams)", raws(db.url(), false)));
  sides.push_back(rillflow_side("rillflow via PgBouncer, off", pooled_off));
  sides.push_back(raw_side("libpq via PgBouncer, unnamed", raws(bouncer.url(), false)));

  std::cout << "bench_pooler: rillflow " << rillflow::version() << ", " << kWriters
            << " writers, batch " << kBatch << ", PgBouncer 1.18 pool_mode=transaction "
            << "default_pool_size " << bouncer_options.pool_size << "; " << seconds
            << " s per side, in slices taken in rotating order\n"
            << "(named statements through a transaction pooler fail with 42P05: not measured)\n\n"
            << std::flush;
  for (auto& s : sides) run_slice(s, 0.2);  // warm-up: connections, statements, caches
  for (auto& s : sides) s.events = 0, s.seconds = 0;
  const int rounds = std::max(2, static_cast<int>(seconds / 0.5));
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < sides.size(); ++i) {
      const auto k = (r % 2 == 0) ? i : sides.size() - 1 - i;
      run_slice(sides[k], seconds / rounds);
    }
  }
  // Feed: every side reads the same table from the start (all appends above), twice, rotating.
  const int passes = quick ? 1 : 2;
  for (auto& s : sides) s.read_feed();  // untimed: the first read also creates the feed's tick
  for (int p = 0; p < passes; ++p) {
    for (std::size_t i = 0; i < sides.size(); ++i)
      time_feed(sides[p % 2 == 0 ? i : sides.size() - 1 - i]);
  }
  const double base_append = sides[1].rate(), base_feed = sides[1].feed_rate();
  std::printf("%-38s %12s %8s %8s %12s %8s %8s\n", "", "append ev/s", "vs pair", "vs ref",
              "feed ev/s", "vs pair", "vs ref");
  for (std::size_t i = 0; i < sides.size(); ++i) {
    const auto& s = sides[i];
    const auto& pair = sides[i % 2 == 0 ? i + 1 : i];  // rillflow rows: ratio to their baseline
    std::printf("%-38s %12.0f %8.2f %8.2f %12.0f %8.2f %8.2f\n", s.name.c_str(), s.rate(),
                s.rate() / pair.rate(), s.rate() / base_append, s.feed_rate(),
                s.feed_rate() / pair.feed_rate(), s.feed_rate() / base_feed);
    if (i % 2 == 0) {
      cli.result("appends, " + s.name, "events/s", s.rate(), pair.rate());
      cli.result("feed reads, " + s.name, "events/s", s.feed_rate(), pair.feed_rate());
    }
  }
  std::printf(
      "\nvs pair: rillflow / libpq on the same path and statement kind (1.00 for libpq rows);\n"
      "vs ref: / libpq direct with named prepared statements. Feed: %.0f events per pass.\n",
      sides[0].feed_events / passes);
  bench::RawPg(db.url()).exec("drop schema if exists " + schema + " cascade");  // directly
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  bench::Cli cli("bench_pooler",
                 "Appends and feed reads with prepared statements on / off, direct and through a "
                 "private PgBouncer in transaction mode, beside raw libpq on the same paths.");
  cli.option("--seconds", seconds, "measured seconds per side (default 4; --quick 1)");
  cli.parse(argc, argv);
  if (seconds <= 0) seconds = cli.quick ? 1 : 4;
  try {
    return run(seconds, cli);
  } catch (const std::exception& e) {
    std::cerr << "bench_pooler failed: " << e.what() << "\n";
    return 1;
  }
}
