// Deliberately broken plugins for the loader's error paths; one library per BAD_KIND.
#include <cstdint>

#if BAD_KIND == 1  // an ABI from the future
extern "C" __attribute__((visibility("default"))) const std::uint32_t rillflow_plugin_abi_version =
    999;
extern "C" __attribute__((visibility("default"))) const void* rillflow_plugin_entry() {
  return nullptr;
}
#elif BAD_KIND == 2  // not a plugin at all
extern "C" __attribute__((visibility("default"))) int some_other_symbol() {
  return 42;
}
#endif
