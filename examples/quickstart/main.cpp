// Quickstart: append events to a stream, read them back, follow the global feed.
// Uses DATABASE_URL when set, otherwise starts an embedded PostgreSQL for the run.
#include <rillflow/rillflow.hpp>

#include <boost/describe.hpp>

#include <cstdlib>
#include <iostream>

struct OrderPlaced {
  int order_id;
  std::string customer;
  double total;
};
BOOST_DESCRIBE_STRUCT(OrderPlaced, (), (order_id, customer, total))

int main() try {
  // $DATABASE_URL, or an embedded PostgreSQL for the length of the run.
  const auto db = rillflow::LocalDatabase::from_env();
  const std::string& url = db.url();

  auto store = rillflow::Store::builder(url).max_connections(4).schema("quickstart").build();
  store.schema().sync();  // applies the library's migrations (a no-op when current)

  const rillflow::Uuid order = store.resolve_stream_alias("orders:42");
  store.events().append_stream(
      order, rillflow::Expected::no_stream(),
      {rillflow::Event("OrderPlaced", OrderPlaced{42, "ada", 99.5}),
       rillflow::Event("OrderPaid", boost::json::object{{"amount", 99.5}})});

  // Append with metadata and an idempotency key: a retry returns the original result.
  const auto ship =
      store.events()
          .builder(order)
          .expected(rillflow::Expected::exact(2))
          .headers(boost::json::object{{"req_id", "r-123"}})
          .idempotency_key("ship-42")
          .push(rillflow::Event("OrderShipped", boost::json::object{{"carrier", "dhl"}}));
  const auto shipped = ship.send();
  const auto retried = ship.send();  // e.g. after a timeout: nothing is written twice
  std::cout << "shipped at version " << shipped.last_version
            << ", retry replayed: " << std::boolalpha << retried.replayed << " (version "
            << retried.last_version << ")\n";

  try {
    store.events().append_stream(order, rillflow::Expected::exact(1),
                                 {rillflow::Event("OrderCancelled", boost::json::object{})});
  } catch (const rillflow::VersionConflict& e) {
    std::cout << "rejected: " << e.what() << "\n";
  }

  std::cout << "stream orders:42 = " << rillflow::to_string(order) << "\n";
  for (const auto& e : store.events().read_stream(order)) {
    std::cout << "  #" << e.stream_seq << " " << e.type << " " << boost::json::serialize(e.body)
              << "\n";
  }

  const auto page = store.events().read_feed(rillflow::FeedPosition{}, 100);
  std::cout << "global feed: " << page.events.size() << " event(s), caught up: " << page.caught_up
            << "\n";
  return 0;
} catch (const rillflow::Error& e) {
  std::cerr << "quickstart failed [" << rillflow::error_code_name(e.code()) << "]: " << e.what()
            << "\n";
  return 1;
}
