// A test plugin: one row per handled event (primary key global_seq, so handling an event twice
// fails loudly). Settings: table (required), sleep_us (per event), fail_type (throws on it).
#include <rillflow/plugin/plugin_api.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include <unistd.h>
#include <stdexcept>
#include <string>

namespace {

class Counting : public rillflow::ProjectionHandler {
 public:
  explicit Counting(const boost::json::value& settings) {
    const auto& o = settings.as_object();
    table_ = o.at("table").as_string().c_str();
    rillflow::validate_identifier(table_, "settings.table");
    if (const auto* s = o.if_contains("sleep_us"))
      sleep_us_ = static_cast<unsigned>(s->to_number<double>());
    if (const auto* f = o.if_contains("fail_type")) fail_type_ = f->as_string().c_str();
  }
  void prepare(rillflow::Transaction& txn) override {
    txn.exec("create table if not exists " + qualified(txn) +
             " (global_seq bigint primary key, stream_id uuid not null, event_type text not null)");
  }
  void apply(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    if (!fail_type_.empty() && e.type == fail_type_) throw std::runtime_error("refusing " + e.type);
    if (sleep_us_ > 0) usleep(sleep_us_);
    txn.exec("insert into " + qualified(txn) +
                 " (global_seq, stream_id, event_type) values ($1, $2::uuid, $3)",
             e.global_seq, e.stream_id, e.type);
  }
  void reset(rillflow::Transaction& txn) override { txn.exec("truncate " + qualified(txn)); }

 private:
  std::string qualified(const rillflow::Transaction& txn) const {
    return "\"" + txn.schema() + "\".\"" + table_ + "\"";
  }
  std::string table_;
  unsigned sleep_us_ = 0;
  std::string fail_type_;
};

}  // namespace

RILLFLOW_PLUGIN(Counting, "counting", "1.0.0")
