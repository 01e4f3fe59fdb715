#pragma once
// Loads plugins (shared libraries): projection handlers (ProjectionHandler), aggregate folders
// (SnapshotFolder) and subscription handlers (SubscriptionHandler).

#include <rillflow/json.hpp>
#include <rillflow/projections/projection_handler.hpp>
#include <rillflow/snapshots/snapshot_folder.hpp>
#include <rillflow/subscriptions/subscription_handler.hpp>

#include <memory>
#include <string>

namespace rillflow::config {
struct Config;
}

namespace rillflow::plugin {

/// What a loaded plugin says about itself.
struct PluginInfo {
  std::string path;
  std::string name;
  std::string version;
};

/// A handler living in a plugin; keeps the library loaded while it exists.
class PluginHandler : public ProjectionHandler {
 public:
  virtual const PluginInfo& info() const = 0;
};

/// dlopen()s `path`, checks the ABI version symbol before calling anything, then creates a
/// handler from `settings`. Throws PluginError naming the path and what is wrong: a missing
/// file, a missing symbol, a wrong ABI version, or a factory that failed.
std::shared_ptr<PluginHandler> load_projection_plugin(const std::string& path,
                                                      const Json& settings);

/// A snapshotter's folder living in a plugin; keeps the library loaded while it exists.
class PluginFolder : public SnapshotFolder {
 public:
  virtual const PluginInfo& info() const = 0;
};

/// dlopen()s `path` and creates its aggregate folder (RILLFLOW_FOLDER_PLUGIN) from `settings`,
/// checking the folder ABI version symbol first. Throws PluginError naming the path and what is
/// wrong: a missing file, no folder entry (e.g. a projection-only plugin), a wrong folder ABI
/// version, or a factory that failed. fold() throws std::runtime_error with the plugin's message.
std::shared_ptr<PluginFolder> load_folder_plugin(const std::string& path, const Json& settings);

/// A subscription's handler living in a plugin; keeps the library loaded while it exists.
class PluginSubscriptionHandler : public SubscriptionHandler {
 public:
  virtual const PluginInfo& info() const = 0;
};

/// dlopen()s `path` and creates its subscription handler (RILLFLOW_SUBSCRIPTION_PLUGIN) from
/// `settings`, checking the subscription ABI version symbol first. Throws PluginError naming the
/// path and what is wrong: a missing file, no subscription entry (e.g. a projection-only
/// plugin), a wrong subscription ABI version, or a factory that failed. handle() and prepare()
/// throw std::runtime_error with the plugin's message.
std::shared_ptr<PluginSubscriptionHandler> load_subscription_plugin(const std::string& path,
                                                                    const Json& settings);

/// Loads every plugin of the config's registry, as rillflowd does when it starts (PluginError on
/// the first that fails), and describes the result: "N projection(s): name = plugin version,
/// ...", then "; M snapshotter(s): name = folder version, ..." when snapshotters are configured
/// and "; K subscription(s): name = handler version, ..." when subscriptions are.
/// rillflowd --check-config and rillflow config check both print it.
std::string check_registry(const config::Config& cfg);

}  // namespace rillflow::plugin
