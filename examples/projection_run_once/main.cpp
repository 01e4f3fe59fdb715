// A projection in-process: a handler writes a read model through the runtime's transaction;
// run_until_idle() catches up, exactly once, with leases, checkpoints, retries and a DLQ.
#include <rillflow/rillflow.hpp>

#include <cstdlib>
#include <iostream>

class VisitCounter : public rillflow::ProjectionHandler {
 public:
  void prepare(rillflow::Transaction& txn) override {
    txn.exec("create table if not exists visits (customer uuid primary key, n integer not null)");
  }
  void apply(const rillflow::EventEnvelope& event, rillflow::Transaction& txn) override {
    txn.exec(
        "insert into visits (customer, n) values ($1, 1) "
        "on conflict (customer) do update set n = visits.n + 1",
        event.stream_id);
  }
  void reset(rillflow::Transaction& txn) override { txn.exec("truncate visits"); }
};

int main() try {
  // $DATABASE_URL, or an embedded PostgreSQL for the length of the run.
  const auto db = rillflow::LocalDatabase::from_env();
  const std::string& url = db.url();
  auto store = rillflow::Store::connect(url);
  store.schema().sync();

  const auto ada = store.resolve_stream_alias("customer:ada");
  for (int i = 0; i < 3; ++i) {
    store.events().append_stream(
        ada, rillflow::Expected::any(),
        {rillflow::Event("CustomerVisited", boost::json::object{{"page", i}})});
  }

  rillflow::ProjectionOptions options;
  options.event_types = {"CustomerVisited"};
  options.max_attempts = 3;  // then the event goes to the DLQ and the projection moves on
  auto daemon = rillflow::ProjectionDaemon::builder(store)
                    .batch_size(500)
                    .register_projection("visits", std::make_shared<VisitCounter>(), options)
                    .build();

  const auto first = daemon.tick_once("visits");
  std::cout << "first tick: " << rillflow::to_string(first.outcome) << ", " << first.processed
            << " event(s)\n";
  std::cout << "then idle: " << rillflow::to_string(daemon.tick_once("visits").outcome) << "\n";
  const auto m = daemon.metrics("visits");
  std::cout << "position " << m.position << " of " << m.head << ", lag " << m.lag_events << ", DLQ "
            << m.dlq_count << "\n";
  return m.lag_events == 0 ? 0 : 1;
} catch (const rillflow::Error& e) {
  std::cerr << "projection_run_once failed: " << e.what() << "\n";
  return 1;
}
