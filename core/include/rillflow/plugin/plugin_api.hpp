#pragma once
// The projection plugin ABI: one shared library, one entry point, a versioned descriptor.
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
// through it (EventEnvelope, Transaction).

#include <rillflow/json.hpp>
#include <rillflow/projections/projection_handler.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>

#define RILLFLOW_PLUGIN_ABI_VERSION 1u
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
};
using rillflow_plugin_entry_fn = const rillflow_plugin_descriptor* (*)();
}

namespace rillflow::plugin::detail {

inline void write_error(char* out, std::size_t size, const char* message) noexcept {
  if (out == nullptr || size == 0) return;
  std::strncpy(out, message, size - 1);
  out[size - 1] = '\0';
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
    try {
      fn();
      return 0;
    } catch (const std::exception& e) {
      write_error(error, size, e.what());
    } catch (...) {
      write_error(error, size, "the plugin threw a non-standard exception");
    }
    return 1;
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
        &rillflow::plugin::detail::Adapter<Handler>::prepare};                        \
    return &descriptor;                                                               \
  }
