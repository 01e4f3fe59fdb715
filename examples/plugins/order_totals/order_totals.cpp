// order_totals: a projection plugin keeping one row per order stream (orders placed, total
// amount, last event) in a read-model table, written through the runtime's transaction.
//
// Settings (the `settings` map of its YAML entry):
//   table: order_totals     name of the read-model table, created in the store's schema (during
//                           a shadow rebuild: in the shadow schema, txn.target_schema())
#include <rillflow/plugin/plugin_api.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include <stdexcept>
#include <string>

namespace {

class OrderTotals : public rillflow::ProjectionHandler {
 public:
  explicit OrderTotals(const boost::json::value& settings) {
    if (!settings.is_object()) throw std::invalid_argument("settings must be a map");
    if (const auto* t = settings.as_object().if_contains("table")) {
      if (!t->is_string()) throw std::invalid_argument("settings.table must be a string");
      table_ = t->as_string().c_str();
    }
    rillflow::validate_identifier(table_, "settings.table");  // it becomes part of SQL text
  }

  void prepare(rillflow::Transaction& txn) override {
    txn.exec("create table if not exists " + qualified(txn) +
             " (order_id uuid primary key, orders integer not null, total numeric not null, "
             "last_event text not null, last_global_seq bigint not null)");
  }

  void apply(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    double amount = 0;
    if (e.type == "OrderPlaced") {
      amount = total_of(e);
    } else if (e.type == "OrderCancelled") {
      amount = -total_of(e);
    } else if (e.type != "OrderShipped") {
      return;  // not an order event
    }
    const int placed = e.type == "OrderPlaced" ? 1 : 0;
    txn.exec("insert into " + qualified(txn) +
                 " as t (order_id, orders, total, last_event, last_global_seq) values ($1::uuid, "
                 "$2, $3, $4, $5) "
                 "on conflict (order_id) do update set orders = t.orders + excluded.orders, "
                 "total = t.total + excluded.total, last_event = excluded.last_event, "
                 "last_global_seq = excluded.last_global_seq",
             e.stream_id, placed, amount, e.type, e.global_seq);
  }

  void reset(rillflow::Transaction& txn) override { txn.exec("truncate " + qualified(txn)); }
  // Every table it writes is created by prepare() in txn.target_schema(), and it writes nothing
  // else: `projections rebuild NAME --shadow` may build it beside the live one.
  bool supports_shadow_rebuild() const override { return true; }

 private:
  static double total_of(const rillflow::EventEnvelope& e) {
    const auto* total = e.body.is_object() ? e.body.as_object().if_contains("total") : nullptr;
    if (total == nullptr || !total->is_number()) {
      throw std::invalid_argument(e.type + " without a numeric \"total\"");
    }
    return total->to_number<double>();
  }
  std::string qualified(const rillflow::Transaction& txn) const {
    return "\"" + txn.target_schema() + "\".\"" + table_ + "\"";
  }

  std::string table_ = "order_totals";
};

}  // namespace

RILLFLOW_PLUGIN(OrderTotals, "order_totals", "1.0.0")
