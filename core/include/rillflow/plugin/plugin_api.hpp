#pragma once
// The plugin ABI: one shared library, one entry point per kind (projection handler, aggregate
// folder, subscription handler), each returning a versioned descriptor.
//
// A plugin is a shared library exporting two C symbols:
//   const uint32_t rillflow_plugin_abi_version;             read by the host before anything else
//   const rillflow_plugin_descriptor* rillflow_plugin_entry(void);
// Write the handler as a ProjectionHandler whose constructor takes the plugin's settings (the
// `settings` map of its YAML entry, as JSON), then declare it once:
//
//   RILLFLOW_PLUGIN(OrderTotals, "order_totals", "1.0.0")
//
// The macro generates the entry points; exceptions never cross the boundary (every call is
// wrapped and failures come back as an error code and message). Build the plugin against the
// same Rillflow version as the host: the ABI version covers the descriptor and the types passed
// through it (EventEnvelope, EventBatch, Transaction).
//
// ABI versions: 1 is the descriptor up to `prepare`; 2 appends `apply_batch`; 3 appends
// `capabilities` (shadow rebuilds) and Transaction::target_schema(). The host speaks 1 to 3: a
// plugin built for an older ABI still loads (the host reads only the fields its version has,
// applies an ABI-1 plugin's batches event by event and never shadow-rebuilds an ABI-1 or ABI-2
// plugin). New fields are only ever appended.

#include <rillflow/json.hpp>
#include <rillflow/projections/projection_handler.hpp>
#include <rillflow/snapshots/snapshot_folder.hpp>
#include <rillflow/subscriptions/subscription_handler.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#define RILLFLOW_PLUGIN_ABI_VERSION 3u
/// capabilities(): the handler keeps the shadow rebuild contract (supports_shadow_rebuild()).
#define RILLFLOW_PLUGIN_CAP_SHADOW_REBUILD 1u
/// The oldest projection plugin ABI the host still loads.
#define RILLFLOW_PLUGIN_ABI_MIN_VERSION 1u
#define RILLFLOW_PLUGIN_ABI_SYMBOL "rillflow_plugin_abi_version"
#define RILLFLOW_PLUGIN_ENTRY_SYMBOL "rillflow_plugin_entry"

extern "C" {
/// Functions return 0 on success; otherwise they wrote a NUL-terminated message into `error`.
struct rillflow_plugin_descriptor {
  std::uint32_t abi_version;  ///< RILLFLOW_PLUGIN_ABI_VERSION the plugin was built with
  const char* name;           ///< the plugin's name, e.g. "order_totals"
  const char* version;        ///< the plugin's own version
  /// Creates a handler from its settings (JSON text); returns null on failure.
  void* (*create)(const char* settings_json, char* error, std::size_t error_size);
  void (*destroy)(void* instance);
  /// `event` is a const rillflow::EventEnvelope*, `txn` a rillflow::Transaction*.
  int (*apply)(void* instance, const void* event, void* txn, char* error, std::size_t error_size);
  int (*reset)(void* instance, void* txn, char* error, std::size_t error_size);
  int (*prepare)(void* instance, void* txn, char* error, std::size_t error_size);
  // ---- ABI 2 (read only when abi_version >= 2) ----
  /// `batch` is a const rillflow::EventBatch*, `txn` a rillflow::Transaction*. May be null: the
  /// host then calls `apply` for each event.
  int (*apply_batch)(void* instance, const void* batch, void* txn, char* error,
                     std::size_t error_size);
  // ---- ABI 3 (read only when abi_version >= 3) ----
  /// RILLFLOW_PLUGIN_CAP_* bits of this instance. May be null: none.
  std::uint32_t (*capabilities)(void* instance);
};
using rillflow_plugin_entry_fn = const rillflow_plugin_descriptor* (*)();
}

namespace rillflow::plugin::detail {

inline void write_error(char* out, std::size_t size, const char* message) noexcept {
  if (out == nullptr || size == 0) return;
  std::strncpy(out, message, size - 1);
  out[size - 1] = '\0';
}

/// Runs `fn` for a plugin entry point: 0 on success, else 1 with the exception's message (or
/// "<who> threw a non-standard exception") written to `error`. Nothing escapes the C boundary.
template <class Fn>
int guarded(char* error, std::size_t size, const char* who, Fn&& fn) noexcept {
  try {
    fn();
    return 0;
  } catch (const std::exception& e) {
    write_error(error, size, e.what());
  } catch (...) {
    write_error(error, size, who);  // then the suffix, without allocating
    if (error != nullptr && size > 0) {
      const std::size_t used = std::strlen(error);
      std::strncpy(error + used, " threw a non-standard exception", size - 1 - used);
      error[size - 1] = '\0';
    }
  }
  return 1;
}

template <class Handler>
struct Adapter {
  static void* create(const char* settings, char* error, std::size_t size) noexcept {
    try {
      return new Handler(boost::json::parse(settings));
    } catch (const std::exception& e) {
      write_error(error, size, e.what());
    } catch (...) {
      write_error(error, size, "the plugin's constructor threw a non-standard exception");
    }
    return nullptr;
  }
  static void destroy(void* instance) noexcept {
    try {
      delete static_cast<Handler*>(instance);
    } catch (...) {
    }
  }
  static int apply(void* instance, const void* event, void* txn, char* error,
                   std::size_t size) noexcept {
    return guarded(error, size, [&] {
      static_cast<Handler*>(instance)->apply(*static_cast<const EventEnvelope*>(event),
                                             *static_cast<Transaction*>(txn));
    });
  }
  static int apply_batch(void* instance, const void* batch, void* txn, char* error,
                         std::size_t size) noexcept {
    return guarded(error, size, [&] {
      static_cast<Handler*>(instance)->apply_batch(*static_cast<const EventBatch*>(batch),
                                                   *static_cast<Transaction*>(txn));
    });
  }
  static std::uint32_t capabilities(void* instance) noexcept {
    try {
      const auto* handler = static_cast<const Handler*>(instance);
      return handler->supports_shadow_rebuild() ? RILLFLOW_PLUGIN_CAP_SHADOW_REBUILD : 0u;
    } catch (...) {
      return 0u;
    }
  }
  static int reset(void* instance, void* txn, char* error, std::size_t size) noexcept {
    return guarded(error, size, [&] {
      static_cast<Handler*>(instance)->reset(*static_cast<Transaction*>(txn));
    });
  }
  static int prepare(void* instance, void* txn, char* error, std::size_t size) noexcept {
    return guarded(error, size, [&] {
      static_cast<Handler*>(instance)->prepare(*static_cast<Transaction*>(txn));
    });
  }

 private:
  template <class Fn>
  static int guarded(char* error, std::size_t size, Fn&& fn) noexcept {
    return detail::guarded(error, size, "the plugin", std::forward<Fn>(fn));
  }
};

}  // namespace rillflow::plugin::detail

/// Exports `Handler` (a rillflow::ProjectionHandler constructible from `const boost::json::value&`
/// settings) as this library's plugin.
#define RILLFLOW_PLUGIN(Handler, plugin_name, plugin_version)                         \
  extern "C" __attribute__((visibility("default")))                                   \
  const std::uint32_t rillflow_plugin_abi_version = RILLFLOW_PLUGIN_ABI_VERSION;      \
  extern "C" __attribute__((visibility("default"))) const rillflow_plugin_descriptor* \
  rillflow_plugin_entry() {                                                           \
    static const rillflow_plugin_descriptor descriptor{                               \
        RILLFLOW_PLUGIN_ABI_VERSION,                                                  \
        plugin_name,                                                                  \
        plugin_version,                                                               \
        &rillflow::plugin::detail::Adapter<Handler>::create,                          \
        &rillflow::plugin::detail::Adapter<Handler>::destroy,                         \
        &rillflow::plugin::detail::Adapter<Handler>::apply,                           \
        &rillflow::plugin::detail::Adapter<Handler>::reset,                           \
        &rillflow::plugin::detail::Adapter<Handler>::prepare,                         \
        &rillflow::plugin::detail::Adapter<Handler>::apply_batch,                     \
        &rillflow::plugin::detail::Adapter<Handler>::capabilities};                   \
    return &descriptor;                                                               \
  }

// ---- Aggregate folders (the snapshotter's plugins) ---------------------------------------------
//
// A folder plugin exports its own pair of C symbols, so projection plugins built before it
// existed load unchanged (the projection ABI above is versioned on its own), and one library may
// export both:
//   const uint32_t rillflow_folder_abi_version;             read by the host before anything else
//   const rillflow_folder_descriptor* rillflow_folder_entry(void);
// Write the folder as a rillflow::SnapshotFolder constructible from its settings (or with no
// arguments), e.g. the ready-made AggregateFolder<A> of an aggregate, and declare it once:
//
//   RILLFLOW_FOLDER_PLUGIN(rillflow::AggregateFolder<Order>, "order", "1.0.0")

#define RILLFLOW_FOLDER_ABI_VERSION 1u
#define RILLFLOW_FOLDER_ABI_SYMBOL "rillflow_folder_abi_version"
#define RILLFLOW_FOLDER_ENTRY_SYMBOL "rillflow_folder_entry"

extern "C" {
/// Receives the new state as JSON text (`size` bytes, not NUL-terminated); called once per
/// successful fold, before fold returns.
typedef void (*rillflow_folder_emit_fn)(void* context, const char* json, std::size_t size);

/// Functions return 0 on success; otherwise they wrote a NUL-terminated message into `error`.
struct rillflow_folder_descriptor {
  std::uint32_t abi_version;  ///< RILLFLOW_FOLDER_ABI_VERSION the plugin was built with
  const char* name;           ///< the folder's name, e.g. "order"
  const char* version;        ///< the plugin's own version
  /// Creates a folder from its settings (JSON text); returns null on failure.
  void* (*create)(const char* settings_json, char* error, std::size_t error_size);
  void (*destroy)(void* instance);
  /// Folds `count` events (`events` points at the first of an array of rillflow::EventEnvelope)
  /// into `state_json` (the state before them as JSON text, or null: the aggregate's new state)
  /// and hands the state after them to `emit`.
  int (*fold)(void* instance, const char* state_json, const void* events, std::size_t count,
              rillflow_folder_emit_fn emit, void* emit_context, char* error,
              std::size_t error_size);
};
using rillflow_folder_entry_fn = const rillflow_folder_descriptor* (*)();
}

namespace rillflow::plugin::detail {

template <class Folder>
struct FolderAdapter {
  static void* create(const char* settings, char* error, std::size_t size) noexcept {
    try {
      if constexpr (std::is_constructible_v<Folder, const Json&>) {
        return new Folder(Json(boost::json::parse(settings)));
      } else {
        return new Folder();
      }
    } catch (const std::exception& e) {
      write_error(error, size, e.what());
    } catch (...) {
      write_error(error, size, "the folder's constructor threw a non-standard exception");
    }
    return nullptr;
  }
  static void destroy(void* instance) noexcept {
    try {
      delete static_cast<Folder*>(instance);
    } catch (...) {
    }
  }
  static int fold(void* instance, const char* state_json, const void* events, std::size_t count,
                  rillflow_folder_emit_fn emit, void* context, char* error,
                  std::size_t size) noexcept {
    try {
      std::optional<Json> state;
      if (state_json != nullptr) state = boost::json::parse(state_json);
      const std::span<const EventEnvelope> span(static_cast<const EventEnvelope*>(events), count);
      const Json next = static_cast<Folder*>(instance)->fold(state ? &*state : nullptr, span);
      const std::string text = boost::json::serialize(next);
      emit(context, text.data(), text.size());
      return 0;
    } catch (const std::exception& e) {
      write_error(error, size, e.what());
    } catch (...) {
      write_error(error, size, "the folder threw a non-standard exception");
    }
    return 1;
  }
};

}  // namespace rillflow::plugin::detail

/// Exports `Folder` (a rillflow::SnapshotFolder, constructible from `const rillflow::Json&`
/// settings or with no arguments) as this library's aggregate folder.
#define RILLFLOW_FOLDER_PLUGIN(Folder, folder_name, folder_version)                   \
  extern "C" __attribute__((visibility("default")))                                   \
  const std::uint32_t rillflow_folder_abi_version = RILLFLOW_FOLDER_ABI_VERSION;      \
  extern "C" __attribute__((visibility("default"))) const rillflow_folder_descriptor* \
  rillflow_folder_entry() {                                                           \
    static const rillflow_folder_descriptor descriptor{                               \
        RILLFLOW_FOLDER_ABI_VERSION,                                                  \
        folder_name,                                                                  \
        folder_version,                                                               \
        &rillflow::plugin::detail::FolderAdapter<Folder>::create,                     \
        &rillflow::plugin::detail::FolderAdapter<Folder>::destroy,                    \
        &rillflow::plugin::detail::FolderAdapter<Folder>::fold};                      \
    return &descriptor;                                                               \
  }

// ---- Subscription handlers (rillflowd's `subscriptions:` registry) -----------------------------
//
// A subscription plugin exports its own pair of C symbols with its own ABI version, so projection
// and folder plugins built before it existed load unchanged, and one library may export all three:
//   const uint32_t rillflow_subscription_abi_version;        read by the host before anything else
//   const rillflow_subscription_descriptor* rillflow_subscription_entry(void);
// Write the handler as a rillflow::SubscriptionHandler constructible from its settings (or with no
// arguments) and declare it once:
//
//   RILLFLOW_SUBSCRIPTION_PLUGIN(OrderOutbox, "order_outbox", "1.0.0")

#define RILLFLOW_SUBSCRIPTION_ABI_VERSION 1u
#define RILLFLOW_SUBSCRIPTION_ABI_SYMBOL "rillflow_subscription_abi_version"
#define RILLFLOW_SUBSCRIPTION_ENTRY_SYMBOL "rillflow_subscription_entry"

extern "C" {
/// Functions return 0 on success; otherwise they wrote a NUL-terminated message into `error`.
struct rillflow_subscription_descriptor {
  std::uint32_t abi_version;  ///< RILLFLOW_SUBSCRIPTION_ABI_VERSION the plugin was built with
  const char* name;           ///< the handler's name, e.g. "order_outbox"
  const char* version;        ///< the plugin's own version
  /// Creates a handler from its settings (JSON text); returns null on failure.
  void* (*create)(const char* settings_json, char* error, std::size_t error_size);
  void (*destroy)(void* instance);
  /// `event` is a const rillflow::EventEnvelope*, `txn` a rillflow::Transaction*.
  int (*handle)(void* instance, const void* event, void* txn, char* error, std::size_t error_size);
  int (*prepare)(void* instance, void* txn, char* error, std::size_t error_size);
};
using rillflow_subscription_entry_fn = const rillflow_subscription_descriptor* (*)();
}

namespace rillflow::plugin::detail {

template <class Handler>
struct SubscriptionAdapter {
  static void* create(const char* settings, char* error, std::size_t size) noexcept {
    try {
      if constexpr (std::is_constructible_v<Handler, const Json&>) {
        return new Handler(Json(boost::json::parse(settings)));
      } else {
        return new Handler();
      }
    } catch (const std::exception& e) {
      write_error(error, size, e.what());
    } catch (...) {
      write_error(error, size, "the handler's constructor threw a non-standard exception");
    }
    return nullptr;
  }
  static void destroy(void* instance) noexcept {
    try {
      delete static_cast<Handler*>(instance);
    } catch (...) {
    }
  }
  static int handle(void* instance, const void* event, void* txn, char* error,
                    std::size_t size) noexcept {
    return guarded(error, size, [&] {
      static_cast<Handler*>(instance)->handle(*static_cast<const EventEnvelope*>(event),
                                              *static_cast<Transaction*>(txn));
    });
  }
  static int prepare(void* instance, void* txn, char* error, std::size_t size) noexcept {
    return guarded(error, size, [&] {
      static_cast<Handler*>(instance)->prepare(*static_cast<Transaction*>(txn));
    });
  }

 private:
  template <class Fn>
  static int guarded(char* error, std::size_t size, Fn&& fn) noexcept {
    return detail::guarded(error, size, "the handler", std::forward<Fn>(fn));
  }
};

}  // namespace rillflow::plugin::detail

/// Exports `Handler` (a rillflow::SubscriptionHandler, constructible from `const rillflow::Json&`
/// settings or with no arguments) as this library's subscription handler.
#define RILLFLOW_SUBSCRIPTION_PLUGIN(Handler, handler_name, handler_version)                 \
  extern "C" __attribute__((visibility("default")))                                          \
  const std::uint32_t rillflow_subscription_abi_version = RILLFLOW_SUBSCRIPTION_ABI_VERSION; \
  extern "C" __attribute__((visibility("default"))) const rillflow_subscription_descriptor*  \
  rillflow_subscription_entry() {                                                            \
    static const rillflow_subscription_descriptor descriptor{                                \
        RILLFLOW_SUBSCRIPTION_ABI_VERSION,                                                   \
        handler_name,                                                                        \
        handler_version,                                                                     \
        &rillflow::plugin::detail::SubscriptionAdapter<Handler>::create,                     \
        &rillflow::plugin::detail::SubscriptionAdapter<Handler>::destroy,                    \
        &rillflow::plugin::detail::SubscriptionAdapter<Handler>::handle,                     \
        &rillflow::plugin::detail::SubscriptionAdapter<Handler>::prepare};                   \
    return &descriptor;                                                                      \
  }
