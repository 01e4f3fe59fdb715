// order_outbox: a subscription plugin (RILLFLOW_SUBSCRIPTION_PLUGIN) that writes one row per
// delivered event into an outbox table, for a relay to publish later (a message broker, e-mail,
// a webhook). The row is written in the transaction rillflowd hands the handler: with
// `ack: in_transaction` the acknowledgement commits in that same transaction, so each event
// leaves exactly one outbox row, even when a daemon is killed mid-way.
//
// Settings (the `settings` map of its `subscriptions:` entry):
//   table: order_outbox     the outbox table, created in the store's schema when missing
//   fail_type: ""           events of this type make the handler throw (to try retries and
//                           parking: `rillflow subscriptions parked-list NAME`)
#include <rillflow/plugin/plugin_api.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include <stdexcept>
#include <string>

namespace {

std::string string_setting(const boost::json::object& o, const char* key, std::string fallback) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (!v->is_string())
    throw std::invalid_argument(std::string("settings.") + key + " must be a string");
  return std::string(v->as_string().c_str());
}

class OrderOutbox : public rillflow::SubscriptionHandler {
 public:
  explicit OrderOutbox(const rillflow::Json& settings) {
    if (!settings.is_object()) throw std::invalid_argument("settings must be a map");
    table_ = string_setting(settings.as_object(), "table", "order_outbox");
    fail_type_ = string_setting(settings.as_object(), "fail_type", "");
    rillflow::validate_identifier(table_, "settings.table");  // it becomes part of SQL text
  }

  void prepare(rillflow::Transaction& txn) override {
    // Several units (and daemons) prepare at once: one creates the table, the others wait.
    txn.exec("select pg_advisory_xact_lock(hashtext($1))", txn.schema() + "." + table_);
    txn.exec("create table if not exists " + qualified(txn) +
             " (id bigserial primary key, global_seq bigint not null, stream_id uuid not null, "
             "stream_seq bigint not null, event_type text not null, payload jsonb not null, "
             "created_at timestamptz not null default now(), published_at timestamptz)");
  }

  void handle(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    if (!fail_type_.empty() && e.type == fail_type_) {
      throw std::runtime_error("order_outbox: refusing " + e.type + " event " +
                               std::to_string(e.global_seq) + " (settings.fail_type)");
    }
    txn.exec("insert into " + qualified(txn) +
                 " (global_seq, stream_id, stream_seq, event_type, payload) values ($1, $2::uuid, "
                 "$3, $4, $5::jsonb)",
             e.global_seq, e.stream_id, e.stream_seq, e.type, boost::json::serialize(e.body));
  }

 private:
  std::string qualified(const rillflow::Transaction& txn) const {
    return "\"" + txn.schema() + "\".\"" + table_ + "\"";
  }

  std::string table_;
  std::string fail_type_;
};

}  // namespace

RILLFLOW_SUBSCRIPTION_PLUGIN(OrderOutbox, "order_outbox", "1.0.0")
