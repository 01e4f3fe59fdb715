// A plugin as built before plugin ABI 2: its own copy of the version-1 descriptor (no
// apply_batch field at the end), written by hand. The host must load it and apply its events one
// at a time. The handler inserts one row per event into table `abi1_rows` of the store's schema.
#include <rillflow/events/event.hpp>
#include <rillflow/projections/transaction.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

namespace {

// The descriptor layout of ABI 1, frozen.
struct descriptor_v1 {
  std::uint32_t abi_version;
  const char* name;
  const char* version;
  void* (*create)(const char* settings_json, char* error, std::size_t error_size);
  void (*destroy)(void* instance);
  int (*apply)(void* instance, const void* event, void* txn, char* error, std::size_t error_size);
  int (*reset)(void* instance, void* txn, char* error, std::size_t error_size);
  int (*prepare)(void* instance, void* txn, char* error, std::size_t error_size);
};

int fail(char* error, std::size_t size, const char* what) {
  std::strncpy(error, what, size - 1);
  error[size - 1] = '\0';
  return 1;
}

std::string table(rillflow::Transaction& txn) {
  return "\"" + txn.schema() + "\".abi1_rows";
}

void* create(const char*, char*, std::size_t) {
  static int instance = 0;
  return &instance;
}
void destroy(void*) {}
int apply(void*, const void* event, void* txn, char* error, std::size_t size) {
  try {
    const auto& e = *static_cast<const rillflow::EventEnvelope*>(event);
    auto& t = *static_cast<rillflow::Transaction*>(txn);
    t.exec("insert into " + table(t) + " (global_seq) values ($1)", e.global_seq);
    return 0;
  } catch (const std::exception& e) {
    return fail(error, size, e.what());
  }
}
int reset(void*, void* txn, char* error, std::size_t size) {
  try {
    auto& t = *static_cast<rillflow::Transaction*>(txn);
    t.exec("truncate " + table(t));
    return 0;
  } catch (const std::exception& e) {
    return fail(error, size, e.what());
  }
}
int prepare(void*, void* txn, char* error, std::size_t size) {
  try {
    auto& t = *static_cast<rillflow::Transaction*>(txn);
    t.exec("create table if not exists " + table(t) + " (global_seq bigint primary key)");
    return 0;
  } catch (const std::exception& e) {
    return fail(error, size, e.what());
  }
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const std::uint32_t rillflow_plugin_abi_version =
    1;
extern "C" __attribute__((visibility("default"))) const descriptor_v1* rillflow_plugin_entry() {
  static const descriptor_v1 d{1, "abi1", "0.9.0", &create, &destroy, &apply, &reset, &prepare};
  return &d;
}
