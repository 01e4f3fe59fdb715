// stream_counts: a projection plugin counting the events of every stream (events, last
// global_seq) in a read-model table. Its batch handler writes a whole batch with ONE statement:
// the batch is summed per stream in memory and upserted from arrays (unnest), adding the counts.
//
// Settings (the `settings` map of its YAML entry):
//   table: stream_counts    name of the read-model table, created in the store's schema
//   batch: true             false: one upsert per event (the per-event path, for comparison)
#include <rillflow/plugin/plugin_api.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

class StreamCounts : public rillflow::ProjectionHandler {
 public:
  explicit StreamCounts(const boost::json::value& settings) {
    if (!settings.is_object()) throw std::invalid_argument("settings must be a map");
    for (const auto& [key, value] : settings.as_object()) {
      if (key == "table") {
        if (!value.is_string()) throw std::invalid_argument("settings.table must be a string");
        table_ = value.as_string().c_str();
      } else if (key == "batch") {
        if (!value.is_bool()) throw std::invalid_argument("settings.batch must be true or false");
        batch_ = value.as_bool();
      } else {
        throw std::invalid_argument("unknown setting settings." + std::string(key) +
                                    " (known: table, batch)");
      }
    }
    rillflow::validate_identifier(table_, "settings.table");  // it becomes part of SQL text
  }

  void prepare(rillflow::Transaction& txn) override {
    if (qualified_ != qualified(txn)) build_sql(txn);  // first call, or a shadow rebuild's target
    txn.exec("create table if not exists " + qualified_ +
             " (stream_id uuid primary key, events bigint not null, "
             "last_global_seq bigint not null)");
  }

  void apply(const rillflow::EventEnvelope& e, rillflow::Transaction& txn) override {
    txn.exec(upsert_one_, e.stream_id, e.global_seq);
  }

  void apply_batch(const rillflow::EventBatch& events, rillflow::Transaction& txn) override {
    if (!batch_) {
      ProjectionHandler::apply_batch(events, txn);  // one apply() per event
      return;
    }
    // One row per stream (ON CONFLICT may touch a row only once per statement).
    index_.clear();
    streams_.clear();
    for (const auto& e : events) {
      auto [it, fresh] = index_.try_emplace(e.stream_id, streams_.size());
      if (fresh) streams_.push_back({e.stream_id, 0, 0});
      auto& s = streams_[it->second];
      ++s.events;
      s.last_global_seq = std::max(s.last_global_seq, e.global_seq);
    }
    // Array literals of uuids and integers: no element needs quoting.
    std::string ids = "{", counts = "{", seqs = "{";
    ids.reserve(streams_.size() * 37 + 2);
    for (const auto& s : streams_) {
      if (ids.size() > 1) {
        ids += ',';
        counts += ',';
        seqs += ',';
      }
      ids += rillflow::to_string(s.id);
      counts += std::to_string(s.events);
      seqs += std::to_string(s.last_global_seq);
    }
    ids += '}';
    counts += '}';
    seqs += '}';
    txn.exec(upsert_many_, ids, counts, seqs);
  }

  void reset(rillflow::Transaction& txn) override { txn.exec("truncate " + qualified(txn)); }
  // Every table it writes is created by prepare() in txn.target_schema(), and it writes nothing
  // else: `projections rebuild NAME --shadow` may build it beside the live one.
  bool supports_shadow_rebuild() const override { return true; }

 private:
  struct Stream {
    rillflow::Uuid id;
    std::int64_t events;
    std::int64_t last_global_seq;
  };
  struct UuidHash {
    std::size_t operator()(const rillflow::Uuid& u) const noexcept {
      return std::hash<std::string_view>{}(
          std::string_view(reinterpret_cast<const char*>(&u), sizeof u));
    }
  };

  std::string qualified(const rillflow::Transaction& txn) const {
    return "\"" + txn.target_schema() + "\".\"" + table_ + "\"";
  }
  void build_sql(const rillflow::Transaction& txn) {
    qualified_ = qualified(txn);
    const std::string conflict =
        " on conflict (stream_id) do update set events = t.events + excluded.events, "
        "last_global_seq = greatest(t.last_global_seq, excluded.last_global_seq)";
    upsert_one_ = "insert into " + qualified_ +
                  " as t (stream_id, events, last_global_seq) values ($1::uuid, 1, $2)" + conflict;
    upsert_many_ = "insert into " + qualified_ +
                   " as t (stream_id, events, last_global_seq) "
                   "select * from unnest($1::uuid[], $2::bigint[], $3::bigint[])" +
                   conflict;
  }

  std::string table_ = "stream_counts";
  bool batch_ = true;
  std::string qualified_, upsert_one_, upsert_many_;  // built once per target schema
  std::unordered_map<rillflow::Uuid, std::size_t, UuidHash> index_;
  std::vector<Stream> streams_;
};

}  // namespace

RILLFLOW_PLUGIN(StreamCounts, "stream_counts", "1.0.0")
