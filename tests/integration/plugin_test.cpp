// Projection plugins: the example plugin end to end, and every loader error.
#include "plugin/plugin_loader.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

using namespace rillflow;
using rillflow::testing::TestSchema;

namespace {
std::string plugin_error(const std::string& path, const Json& settings = boost::json::object()) {
  try {
    plugin::load_projection_plugin(path, settings);
  } catch (const PluginError& e) {
    CHECK(e.path() == path);
    CHECK(e.code() == ErrorCode::kPlugin);
    return e.what();
  }
  return "(no error)";
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("the_example_plugin_projects_orders_through_the_runtime") {
  TestSchema db;
  auto handler = plugin::load_projection_plugin(RILLFLOW_ORDER_TOTALS_PLUGIN,
                                                boost::json::object{{"table", "totals"}});
  CHECK(handler->info().name == "order_totals");
  CHECK(handler->info().version == "1.0.0");
  CHECK(handler->supports_shadow_rebuild());  // ABI 3 capabilities, through the macro
  const auto a = new_uuid();
  const auto b = new_uuid();
  auto events = db.store().events();
  events.append_stream(a, Expected::no_stream(),
                       {Event("OrderPlaced", boost::json::object{{"total", 10.5}}),
                        Event("OrderPlaced", boost::json::object{{"total", 4.5}})});
  events.append_stream(b, Expected::no_stream(),
                       {Event("OrderPlaced", boost::json::object{{"total", 7}}),
                        Event("OrderCancelled", boost::json::object{{"total", 7}})});
  // A poison event: the plugin's exception becomes a DLQ entry, never a crash.
  events.append_stream(new_uuid(), Expected::no_stream(),
                       {Event("OrderPlaced", boost::json::object{})});
  ProjectionOptions o;
  o.max_attempts = 1;
  auto d =
      ProjectionDaemon::builder(db.store()).register_projection("order_totals", handler, o).build();
  CHECK(d.run_until_idle() == 5);
  auto conn = db.raw();
  const auto rows =
      pqxx::nontransaction(conn).exec("select order_id::text, orders, total::float8 from \"" +
                                      db.name() + "\".totals order by total desc");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0][0].as<std::string>() == to_string(a));
  CHECK(rows[0][1].as<int>() == 2);
  CHECK(rows[0][2].as<double>() == 15.0);
  CHECK(rows[1][2].as<double>() == 0.0);
  const auto dlq = d.dlq_list("order_totals");
  REQUIRE(dlq.size() == 1);
  CHECK(contains(dlq[0].error, "without a numeric \"total\""));

  d.rebuild("order_totals");  // the plugin's reset hook empties the table
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".totals")[0][0]
            .as<int>() == 0);
  CHECK(d.run_until_idle() == 5);
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".totals")[0][0]
            .as<int>() == 2);
}

TEST_CASE("plugin_loading_errors_say_which_and_where") {
  CHECK(contains(plugin_error("/nonexistent/libnothing.so"), "no such file"));
  CHECK(contains(plugin_error(RILLFLOW_BAD_ABI_PLUGIN), "built for plugin ABI 999"));
  CHECK(contains(plugin_error(RILLFLOW_NOT_A_PLUGIN), "rillflow_plugin_abi_version not found"));
  const auto factory = plugin_error(RILLFLOW_ORDER_TOTALS_PLUGIN,
                                    boost::json::object{{"table", "Bad Name\"; drop"}});
  CHECK(contains(factory, "factory of plugin 'order_totals' failed"));
  CHECK(contains(factory, "settings.table"));
  CHECK(contains(plugin_error(RILLFLOW_ORDER_TOTALS_PLUGIN, boost::json::array{1}),
                 "settings must be a map"));
  // A file that is not a shared library at all.
  CHECK(contains(plugin_error(RILLFLOW_SOURCE_DIR "/README.md"), "cannot be loaded"));
}

TEST_CASE("subscription_plugins_have_their_own_entry_and_projection_plugins_still_load") {
  TestSchema db;
  auto handler = plugin::load_subscription_plugin(RILLFLOW_ORDER_OUTBOX_PLUGIN,
                                                  boost::json::object{{"table", "outbox"}});
  CHECK(handler->info().name == "order_outbox");
  CHECK(handler->info().version == "1.0.0");
  auto subs = db.store().subscriptions();
  subs.in_transaction([&](Transaction& txn) { handler->prepare(txn); });
  EventEnvelope e;
  e.global_seq = 7;
  e.stream_id = new_uuid();
  e.stream_seq = 1;
  e.type = "OrderPlaced";
  e.body = boost::json::object{{"total", 3}};
  subs.in_transaction([&](Transaction& txn) { handler->handle(e, txn); });
  auto conn = db.raw();
  CHECK(pqxx::nontransaction(conn)
            .exec("select count(*) from \"" + db.name() + "\".outbox where global_seq = 7")[0][0]
            .as<int>() == 1);
  // A projection-only plugin has no subscription entry, and the example projection plugin (ABI 1)
  // still loads as a projection next to the new entry.
  try {
    plugin::load_subscription_plugin(RILLFLOW_ORDER_TOTALS_PLUGIN, boost::json::object());
    FAIL("a projection plugin loaded as a subscription handler");
  } catch (const PluginError& err) {
    CHECK(contains(err.what(), "rillflow_subscription_abi_version"));
  }
  CHECK(plugin::load_projection_plugin(RILLFLOW_ORDER_TOTALS_PLUGIN, boost::json::object())
            ->info()
            .name == "order_totals");
  try {
    plugin::load_subscription_plugin(RILLFLOW_ORDER_OUTBOX_PLUGIN,
                                     boost::json::object{{"table", "no such; table"}});
    FAIL("bad settings were accepted");
  } catch (const PluginError& err) {
    CHECK(contains(err.what(), "settings.table"));
  }
}
