// A test plugin: one row per handled event (primary key global_seq, so handling an event twice
// fails loudly), saying whether apply_batch ('batch') or apply ('apply') wrote it.
// Settings: table (required), sleep_us (per event), fail_type (throws on it, in a batch too).
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
             " (global_seq bigint primary key, stream_id uuid not null, event_type text not null, "
             "via text not null default 'apply')");
  }
  void apply(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    if (!fail_type_.empty() && e.type == fail_type_) throw std::runtime_error("refusing " + e.type);
    if (sleep_us_ > 0) usleep(sleep_us_);
    txn.exec("insert into " + qualified(txn) +
                 " (global_seq, stream_id, event_type) values ($1, $2::uuid, $3)",
             e.global_seq, e.stream_id, e.type);
  }
  // The whole batch in one statement (unnest of arrays).
  void apply_batch(const rillflow::EventBatch& events, rillflow::Transaction& txn) override {
    std::string seqs = "{", ids = "{", types = "{";
    for (const auto& e : events) {
      if (!fail_type_.empty() && e.type == fail_type_)
        throw std::runtime_error("refusing " + e.type + " in a batch");
      if (sleep_us_ > 0) usleep(sleep_us_);
      if (seqs.size() > 1) {
        seqs += ',';
        ids += ',';
        types += ',';
      }
      seqs += std::to_string(e.global_seq);
      ids += rillflow::to_string(e.stream_id);
      types += '"';
      for (char c : e.type) {
        if (c == '"' || c == '\\') types += '\\';
        types += c;
      }
      types += '"';
    }
    seqs += '}';
    ids += '}';
    types += '}';
    txn.exec("insert into " + qualified(txn) +
                 " (global_seq, stream_id, event_type, via) select s, i, t, 'batch' from "
                 "unnest($1::bigint[], $2::uuid[], $3::text[]) as u(s, i, t)",
             seqs, ids, types);
  }
  void reset(rillflow::Transaction& txn) override { txn.exec("truncate " + qualified(txn)); }
  // Every table it writes is created by prepare() in txn.target_schema(), and it writes nothing
  // else: `projections rebuild NAME --shadow` may build it beside the live one.
  bool supports_shadow_rebuild() const override { return true; }

 private:
  std::string qualified(const rillflow::Transaction& txn) const {
    return "\"" + txn.target_schema() + "\".\"" + table_ + "\"";
  }
  std::string table_;
  unsigned sleep_us_ = 0;
  std::string fail_type_;
};

}  // namespace

RILLFLOW_PLUGIN(Counting, "counting", "1.0.0")
