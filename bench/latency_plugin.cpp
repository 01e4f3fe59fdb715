// Benchmark plugin: records when each event reached the handler, beside the time the appender
// put in its body ("t", microseconds since the Unix epoch).
#include <rillflow/plugin/plugin_api.hpp>

#include <chrono>
#include <string>

namespace {

class Latency : public rillflow::ProjectionHandler {
 public:
  explicit Latency(const boost::json::value&) {}
  void prepare(rillflow::Transaction& txn) override {
    txn.exec(
        "create table if not exists \"" + txn.schema() +
        "\".latency (global_seq bigint primary key, sent_us bigint, handled_us bigint not null)");
  }
  void apply(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const auto* t = e.body.is_object() ? e.body.as_object().if_contains("t") : nullptr;
    std::optional<std::int64_t> sent;
    if (t != nullptr && t->is_int64()) sent = t->as_int64();
    txn.exec("insert into \"" + txn.schema() + "\".latency values ($1, $2, $3)", e.global_seq, sent,
             now);
  }
};

}  // namespace

RILLFLOW_PLUGIN(Latency, "latency", "1.0.0")
