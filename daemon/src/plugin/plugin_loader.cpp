#include "plugin/plugin_loader.hpp"

#include "config/config.hpp"

#include <rillflow/error.hpp>
#include <rillflow/plugin/plugin_api.hpp>

#include <dlfcn.h>
#include <filesystem>
#include <stdexcept>

namespace rillflow::plugin {

namespace {

struct Library {
  void* handle = nullptr;
  ~Library() {
    if (handle != nullptr) dlclose(handle);
  }
};

class LoadedHandler final : public PluginHandler {
 public:
  LoadedHandler(std::shared_ptr<Library> lib, const rillflow_plugin_descriptor* d, void* instance,
                PluginInfo info)
      : lib_(std::move(lib)),
        d_(d),
        // Fields beyond ABI 1 exist only in descriptors of a newer ABI: never read past the end.
        apply_batch_(d->abi_version >= 2 ? d->apply_batch : nullptr),
        capabilities_(d->abi_version >= 3 ? d->capabilities : nullptr),
        instance_(instance),
        info_(std::move(info)) {}
  ~LoadedHandler() override { d_->destroy(instance_); }

  void apply(const EventEnvelope& event, Transaction& txn) override {
    char error[2048] = {};
    if (d_->apply(instance_, &event, &txn, error, sizeof error) != 0)
      throw std::runtime_error(error);
  }
  void apply_batch(const EventBatch& events, Transaction& txn) override {
    if (apply_batch_ == nullptr) {  // an ABI-1 plugin (or none given): one event at a time
      ProjectionHandler::apply_batch(events, txn);
      return;
    }
    char error[2048] = {};
    if (apply_batch_(instance_, &events, &txn, error, sizeof error) != 0)
      throw std::runtime_error(error);
  }
  void reset(Transaction& txn) override {
    char error[2048] = {};
    if (d_->reset(instance_, &txn, error, sizeof error) != 0) throw std::runtime_error(error);
  }
  void prepare(Transaction& txn) override {
    char error[2048] = {};
    if (d_->prepare(instance_, &txn, error, sizeof error) != 0) throw std::runtime_error(error);
  }
  bool supports_shadow_rebuild() const override {
    return capabilities_ != nullptr &&
           (capabilities_(instance_) & RILLFLOW_PLUGIN_CAP_SHADOW_REBUILD) != 0;
  }
  const PluginInfo& info() const override { return info_; }

 private:
  std::shared_ptr<Library> lib_;  // destroyed after the instance
  const rillflow_plugin_descriptor* d_;
  decltype(rillflow_plugin_descriptor::apply_batch) apply_batch_;
  decltype(rillflow_plugin_descriptor::capabilities) capabilities_;
  void* instance_;
  PluginInfo info_;
};

// The folder behind a plugin's folder descriptor.
class LoadedFolder final : public PluginFolder {
 public:
  LoadedFolder(std::shared_ptr<Library> lib, const rillflow_folder_descriptor* d, void* instance,
               PluginInfo info)
      : lib_(std::move(lib)), d_(d), instance_(instance), info_(std::move(info)) {}
  ~LoadedFolder() override { d_->destroy(instance_); }

  Json fold(const Json* state, std::span<const EventEnvelope> events) override {
    char error[2048] = {};
    const std::string text = state != nullptr ? boost::json::serialize(*state) : std::string();
    std::string out;
    const auto emit = [](void* context, const char* json, std::size_t size) {
      static_cast<std::string*>(context)->assign(json, size);
    };
    if (d_->fold(instance_, state != nullptr ? text.c_str() : nullptr, events.data(), events.size(),
                 emit, &out, error, sizeof error) != 0) {
      throw std::runtime_error(error[0] != '\0' ? error : "the folder failed without a reason");
    }
    boost::system::error_code ec;
    auto next = boost::json::parse(out, ec);
    if (ec) throw std::runtime_error("the folder emitted malformed JSON: " + ec.message());
    return next;
  }
  const PluginInfo& info() const override { return info_; }

 private:
  std::shared_ptr<Library> lib_;  // destroyed after the instance
  const rillflow_folder_descriptor* d_;
  void* instance_;
  PluginInfo info_;
};

// The subscription handler behind a plugin's subscription descriptor.
class LoadedSubscriptionHandler final : public PluginSubscriptionHandler {
 public:
  LoadedSubscriptionHandler(std::shared_ptr<Library> lib, const rillflow_subscription_descriptor* d,
                            void* instance, PluginInfo info)
      : lib_(std::move(lib)), d_(d), instance_(instance), info_(std::move(info)) {}
  ~LoadedSubscriptionHandler() override { d_->destroy(instance_); }

  void handle(const EventEnvelope& event, Transaction& txn) override {
    char error[2048] = {};
    if (d_->handle(instance_, &event, &txn, error, sizeof error) != 0)
      throw std::runtime_error(error[0] != '\0' ? error : "the handler failed without a reason");
  }
  void prepare(Transaction& txn) override {
    char error[2048] = {};
    if (d_->prepare(instance_, &txn, error, sizeof error) != 0)
      throw std::runtime_error(
          error[0] != '\0' ? error : "the handler's prepare() failed without a reason");
  }
  const PluginInfo& info() const override { return info_; }

 private:
  std::shared_ptr<Library> lib_;  // destroyed after the instance
  const rillflow_subscription_descriptor* d_;
  void* instance_;
  PluginInfo info_;
};

std::shared_ptr<Library> open_library(const std::string& path, const std::string& kind) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw PluginError(path, "no such file (check the " + kind + "'s `plugin` path)");
  }
  auto lib = std::make_shared<Library>();
  lib->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib->handle == nullptr) {
    const char* why = dlerror();
    throw PluginError(
        path, std::string("cannot be loaded: ") + (why != nullptr ? why : "unknown dlopen error"));
  }
  return lib;
}

}  // namespace

std::shared_ptr<PluginFolder> load_folder_plugin(const std::string& path, const Json& settings) {
  auto lib = open_library(path, "snapshotter");
  const auto* abi =
      static_cast<const std::uint32_t*>(dlsym(lib->handle, RILLFLOW_FOLDER_ABI_SYMBOL));
  if (abi == nullptr) {
    throw PluginError(path, "has no aggregate folder: symbol " RILLFLOW_FOLDER_ABI_SYMBOL
                            " not found (declare the folder with RILLFLOW_FOLDER_PLUGIN)");
  }
  if (*abi != RILLFLOW_FOLDER_ABI_VERSION) {
    throw PluginError(path, "was built for folder ABI " + std::to_string(*abi) +
                                ", this host speaks folder ABI " +
                                std::to_string(RILLFLOW_FOLDER_ABI_VERSION) +
                                "; rebuild it against this Rillflow");
  }
  auto entry =
      reinterpret_cast<rillflow_folder_entry_fn>(dlsym(lib->handle, RILLFLOW_FOLDER_ENTRY_SYMBOL));
  if (entry == nullptr) {
    throw PluginError(path,
                      "has no aggregate folder: symbol " RILLFLOW_FOLDER_ENTRY_SYMBOL " not found");
  }
  const rillflow_folder_descriptor* d = entry();
  if (d == nullptr || d->abi_version != RILLFLOW_FOLDER_ABI_VERSION || d->create == nullptr ||
      d->destroy == nullptr || d->fold == nullptr) {
    throw PluginError(path, "returned an incomplete folder descriptor");
  }
  PluginInfo info{path, d->name != nullptr ? d->name : "", d->version != nullptr ? d->version : ""};
  char error[2048] = {};
  const auto text = boost::json::serialize(settings);
  void* instance = d->create(text.c_str(), error, sizeof error);
  if (instance == nullptr) {
    throw PluginError(path, "factory of folder '" + info.name +
                                "' failed: " + (error[0] != '\0' ? error : "no reason given"));
  }
  return std::make_shared<LoadedFolder>(std::move(lib), d, instance, std::move(info));
}

std::shared_ptr<PluginSubscriptionHandler> load_subscription_plugin(const std::string& path,
                                                                    const Json& settings) {
  auto lib = open_library(path, "subscription");
  const auto* abi =
      static_cast<const std::uint32_t*>(dlsym(lib->handle, RILLFLOW_SUBSCRIPTION_ABI_SYMBOL));
  if (abi == nullptr) {
    throw PluginError(path, "has no subscription handler: symbol " RILLFLOW_SUBSCRIPTION_ABI_SYMBOL
                            " not found (declare the handler with RILLFLOW_SUBSCRIPTION_PLUGIN)");
  }
  if (*abi != RILLFLOW_SUBSCRIPTION_ABI_VERSION) {
    throw PluginError(path, "was built for subscription ABI " + std::to_string(*abi) +
                                ", this host speaks subscription ABI " +
                                std::to_string(RILLFLOW_SUBSCRIPTION_ABI_VERSION) +
                                "; rebuild it against this Rillflow");
  }
  auto entry = reinterpret_cast<rillflow_subscription_entry_fn>(
      dlsym(lib->handle, RILLFLOW_SUBSCRIPTION_ENTRY_SYMBOL));
  if (entry == nullptr) {
    throw PluginError(path,
                      "has no subscription handler: symbol " RILLFLOW_SUBSCRIPTION_ENTRY_SYMBOL
                      " not found");
  }
  const rillflow_subscription_descriptor* d = entry();
  if (d == nullptr || d->abi_version != RILLFLOW_SUBSCRIPTION_ABI_VERSION || d->create == nullptr ||
      d->destroy == nullptr || d->handle == nullptr || d->prepare == nullptr) {
    throw PluginError(path, "returned an incomplete subscription descriptor");
  }
  PluginInfo info{path, d->name != nullptr ? d->name : "", d->version != nullptr ? d->version : ""};
  char error[2048] = {};
  const auto text = boost::json::serialize(settings);
  void* instance = d->create(text.c_str(), error, sizeof error);
  if (instance == nullptr) {
    throw PluginError(path, "factory of subscription handler '" + info.name +
                                "' failed: " + (error[0] != '\0' ? error : "no reason given"));
  }
  return std::make_shared<LoadedSubscriptionHandler>(std::move(lib), d, instance, std::move(info));
}

std::shared_ptr<PluginHandler> load_projection_plugin(const std::string& path,
                                                      const Json& settings) {
  auto lib = open_library(path, "projection");
  // The ABI version is a data symbol: read before any plugin function is called (dlopen has
  // run the library's static initialisers, as it does for any shared library).
  const auto* abi =
      static_cast<const std::uint32_t*>(dlsym(lib->handle, RILLFLOW_PLUGIN_ABI_SYMBOL));
  if (abi == nullptr) {
    throw PluginError(path, "is not a Rillflow plugin: symbol " RILLFLOW_PLUGIN_ABI_SYMBOL
                            " not found (declare the handler with RILLFLOW_PLUGIN)");
  }
  if (*abi < RILLFLOW_PLUGIN_ABI_MIN_VERSION || *abi > RILLFLOW_PLUGIN_ABI_VERSION) {
    throw PluginError(path, "was built for plugin ABI " + std::to_string(*abi) +
                                ", this host speaks ABI " +
                                std::to_string(RILLFLOW_PLUGIN_ABI_MIN_VERSION) + ".." +
                                std::to_string(RILLFLOW_PLUGIN_ABI_VERSION) +
                                "; rebuild it against this Rillflow");
  }
  auto entry =
      reinterpret_cast<rillflow_plugin_entry_fn>(dlsym(lib->handle, RILLFLOW_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    throw PluginError(
        path, "is not a Rillflow plugin: symbol " RILLFLOW_PLUGIN_ENTRY_SYMBOL " not found");
  }
  const rillflow_plugin_descriptor* d = entry();
  // The descriptor's layout is the one of the version the library declared.
  if (d == nullptr || d->abi_version != *abi || d->create == nullptr || d->destroy == nullptr ||
      d->apply == nullptr || d->reset == nullptr || d->prepare == nullptr) {
    throw PluginError(path, "returned an incomplete descriptor");
  }
  PluginInfo info{path, d->name != nullptr ? d->name : "", d->version != nullptr ? d->version : ""};
  char error[2048] = {};
  const auto text = boost::json::serialize(settings);
  void* instance = d->create(text.c_str(), error, sizeof error);
  if (instance == nullptr) {
    throw PluginError(path, "factory of plugin '" + info.name +
                                "' failed: " + (error[0] != '\0' ? error : "no reason given"));
  }
  return std::make_shared<LoadedHandler>(std::move(lib), d, instance, std::move(info));
}

std::string check_registry(const config::Config& cfg) {
  std::string out = std::to_string(cfg.projections.size()) + " projection(s)";
  for (const auto& p : cfg.projections) {
    const auto handler = load_projection_plugin(p.plugin, p.settings);
    out += (&p == &cfg.projections.front() ? ": " : ", ") + p.name + " = " + handler->info().name +
           " " + handler->info().version;
  }
  if (!cfg.snapshotters.empty()) {
    out += "; " + std::to_string(cfg.snapshotters.size()) + " snapshotter(s)";
    for (const auto& s : cfg.snapshotters) {
      const auto folder = load_folder_plugin(s.plugin, s.settings);
      out += (&s == &cfg.snapshotters.front() ? ": " : ", ") + s.name + " = " +
             folder->info().name + " " + folder->info().version;
    }
  }
  if (!cfg.subscriptions.empty()) {
    out += "; " + std::to_string(cfg.subscriptions.size()) + " subscription(s)";
    for (const auto& s : cfg.subscriptions) {
      const auto handler = load_subscription_plugin(s.plugin, s.settings);
      out += (&s == &cfg.subscriptions.front() ? ": " : ", ") + s.name + " = " +
             handler->info().name + " " + handler->info().version;
    }
  }
  return out;
}

}  // namespace rillflow::plugin
