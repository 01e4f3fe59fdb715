// A folder plugin for rillflowd's snapshotter tests: counts events, and throws on a stream that
// holds an event of type `fail_type` (settings), so that stream never gets a snapshot.
#include <rillflow/plugin/plugin_api.hpp>

#include <stdexcept>
#include <string>

namespace {

class FailingFolder final : public rillflow::SnapshotFolder {
 public:
  explicit FailingFolder(const rillflow::Json& settings) {
    if (const auto* t = settings.as_object().if_contains("fail_type"); t && t->is_string())
      fail_type_ = t->as_string().c_str();
  }
  rillflow::Json fold(const rillflow::Json* state,
                      std::span<const rillflow::EventEnvelope> events) override {
    std::int64_t n = state != nullptr ? state->at("events").to_number<std::int64_t>() : 0;
    for (const auto& e : events) {
      if (e.type == fail_type_) throw std::runtime_error("refusing " + e.type);
      ++n;
    }
    return boost::json::object{{"events", n}};
  }

 private:
  std::string fail_type_;
};

}  // namespace

RILLFLOW_FOLDER_PLUGIN(FailingFolder, "failing", "1.0.0")
