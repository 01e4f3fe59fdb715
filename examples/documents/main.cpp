// Documents, queries, compiled queries, sessions, aggregates and snapshots, end to end.
// Uses DATABASE_URL when set, otherwise starts an embedded PostgreSQL for the run.
// The README's document sections are the regions between "snippet:" markers below.
#include <rillflow/rillflow.hpp>

#include <boost/describe.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>

using rillflow::Predicate;
using rillflow::SortDirection;

// snippet:types
// A document type names its collection; Boost.Describe gives the JSON mapping.
struct Customer {
  static constexpr std::string_view kCollection = "customers";
  std::string email;
  std::string status;
  int visits = 0;
};
BOOST_DESCRIBE_STRUCT(Customer, (), (email, status, visits))
// snippet:end

// snippet:compiled
// A compiled query: its shape is fixed, its members are bound values.
struct FrequentCustomers : rillflow::CompiledQuery<Customer> {
  explicit FrequentCustomers(int min) : min_visits(min) {}
  int min_visits;
  void configure(rillflow::DocumentQueryContext& q) const override {
    q.filter(Predicate::eq("status", "active"))
        .filter(Predicate::ge("visits", min_visits))
        .order_by("visits", SortDirection::Desc);
  }
};
// snippet:end

// snippet:aggregate
// An aggregate: new state by default construction, apply(envelope), version().
struct VisitCounter {
  std::int64_t total = 0;
  std::int64_t seen = 0;  // the stream_seq of the last event applied
  void apply(const rillflow::EventEnvelope& e) {
    if (e.type == "CustomerVisited") ++total;
    seen = e.stream_seq;
  }
  std::int64_t version() const { return seen; }
};
BOOST_DESCRIBE_STRUCT(VisitCounter, (), (total, seen))  // snapshots need the JSON mapping
// snippet:end

int main() try {
  // $DATABASE_URL, or an embedded PostgreSQL for the length of the run.
  const auto db = rillflow::LocalDatabase::from_env();
  const std::string& url = db.url();
  // snippet:store
  rillflow::AppendOptions defaults;
  defaults.headers = boost::json::object{{"source", "api"}};
  auto store = rillflow::Store::builder(url)
                   .schema("documents_example")
                   .session_defaults(defaults)    // every session append carries these
                   .session_advisory_locks(true)  // and locks its stream while appending
                   .build();
  store.schema().sync();
  // snippet:end

  // snippet:documents
  const auto docs = store.docs();
  const auto id = rillflow::new_uuid();
  const auto v1 = docs.put(id, Customer{"ada@example.com", "active", 0});  // 1
  auto [ada, version] = *docs.get<Customer>(id);
  const auto v2 = docs.update<Customer>(id, version, [](Customer& c) { c.visits += 1; });
  // Partial update: only profile.city changes; missing parents are created.
  const auto v3 = docs.patch<Customer>(id, v2, "profile.city", "London");
  try {
    docs.put(id, ada, v1);  // a write based on version 1
  } catch (const rillflow::DocVersionConflict& e) {
    std::cout << "stale write rejected: expected " << e.expected() << ", actual " << e.actual()
              << "\n";
  }
  docs.soft_delete<Customer>(id);  // hidden from get and queries
  std::cout << "after soft delete: " << (docs.get<Customer>(id) ? "visible" : "hidden") << "\n";
  docs.restore<Customer>(id);
  std::cout << "version after restore: " << docs.get<Customer>(id)->version << " (patched at " << v3
            << ")\n";
  // snippet:end

  // snippet:queries
  docs.put_many<Customer>({{rillflow::new_uuid(), {"bob@example.com", "active", 3}},
                           {rillflow::new_uuid(), {"cy@example.com", "inactive", 9}},
                           {rillflow::new_uuid(), {"di@example.org", "active", 7}}});
  const auto page = docs.query<Customer>()
                        .filter(Predicate::eq("status", "active"))
                        .order_by("email", SortDirection::Asc)
                        .page(1, 25)
                        .fetch_all();
  for (const auto& c : page) std::cout << "active: " << c.email << "\n";
  const auto busy = docs.query<Customer>()
                        .filter(Predicate::gt("visits", 2) && !Predicate::like("email", "%.org"))
                        .select_fields({{"mail", "email"}, {"n", "visits"}})
                        .order_by("visits", SortDirection::Desc)
                        .fetch_all<rillflow::Json>();
  std::cout << "busy: " << boost::json::serialize(boost::json::value_from(busy)) << "\n";
  std::cout << "in London: "
            << docs.query<Customer>().filter(Predicate::eq("profile.city", "London")).count()
            << "\n";
  // snippet:end

  // snippet:compiled-run
  for (const auto& c : docs.execute_compiled(FrequentCustomers(3))) {
    std::cout << "frequent: " << c.email << " (" << c.visits << ")\n";
  }
  // snippet:end

  // snippet:session
  const rillflow::AggregateRepository<VisitCounter> visits(store);
  auto session = store.session();
  auto customer = *session.load<Customer>(id);  // read once, tracked at its version
  customer.visits += 1;
  session.store(id, customer);  // written only if still at the loaded version
  session.enqueue_event(id, rillflow::Expected::no_stream(),
                        rillflow::Event("CustomerRegistered", customer));
  session.aggregates(visits).commit(id, rillflow::Expected::exact(1),
                                    {rillflow::Event("CustomerVisited", boost::json::object{})});
  session.save_changes();  // documents, events and snapshots: one transaction
  // snippet:end

  // snippet:snapshots
  const auto checked = visits.with_validator([](const VisitCounter& c) {
    return c.total > 1000 ? std::optional<std::string>("too many visits") : std::nullopt;
  });
  for (int i = 0; i < 5; ++i) {
    const auto state = checked.load_with_snapshot(id);
    // Expects the stream at state.version(); snapshots the real state every 3 events.
    checked.commit_and_snapshot(id, state,
                                {rillflow::Event("CustomerVisited", boost::json::object{})}, 3);
  }
  const auto counter = checked.load_with_snapshot(id);  // the snapshot + the events after it
  std::cout << "visits: " << counter.total << " at version " << counter.version() << "\n";
  // snippet:end

  // snippet:snapshotter
  // Background compaction: every stream 1 or more events past its snapshot, 100 per round.
  rillflow::Snapshotter snapshotter(store,
                                    std::make_shared<rillflow::AggregateFolder<VisitCounter>>(),
                                    {.threshold_events = 1, .batch_size = 100});
  const rillflow::CompactionReport report = snapshotter.run_until_idle();
  std::cout << "compacted " << report.written << " stream(s), " << report.failures.size()
            << " failed\n";
  // snippet:end
  if (!report.failures.empty()) return 1;
  return 0;
} catch (const rillflow::Error& e) {
  std::cerr << "documents example failed [" << rillflow::error_code_name(e.code())
            << "]: " << e.what() << "\n";
  return 1;
}
