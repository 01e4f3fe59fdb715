#pragma once
// How a base store reaches its tenants' stores (private to rillflow::core): the in-process cache
// of provisioned tenants and the routing of a session to its tenant's schema.

#include "store_state.hpp"

#include <rillflow/tenants/tenant_registry.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace rillflow::detail {

/// The tenants a base store knows to be provisioned, with their stores' shared state. Filled by
/// ensure_tenant and by registry look-ups that found the tenant; emptied by drop. Never holds a
/// tenant that was not found (a tenant provisioned elsewhere is seen at the next look-up).
struct TenantCache {
  struct Entry {
    std::shared_ptr<const StoreState> state;
    TenantInfo info;
    bool ensured = false;  ///< by ensure_tenant in this process (else only found registered)
  };
  std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;
};

/// The shared state of tenant `name`'s store: the base's pool and options, schema tenant_<name>.
/// `name` must be valid.
std::shared_ptr<const StoreState> make_tenant_state(const StoreState& base,
                                                    const std::string& name);

/// The tenant's store state: from the cache, else from the registry (then cached). Validates
/// the name first. Throws TenantNotFound when it is not registered, kInvalidArgument when `base`
/// is itself a tenant's store.
std::shared_ptr<const StoreState> open_tenant(const StoreState& base, std::string_view name);

/// True when a tenant store's schema no longer exists (dropped meanwhile).
bool tenant_schema_gone(const StoreState& tenant);

/// Forgets a cached tenant (after drop, or when its schema turned out to be gone).
void forget_tenant(const StoreState& base, const std::string& name);

/// Where a session of `store` works: `tenant` (the session context's) routed as the store's
/// tenant strategy says. A tenant's store serves only its own tenant; a schema-per-tenant store
/// requires a tenant ("tenant required"); a single-tenant store refuses one.
std::shared_ptr<const StoreState> route_session(const std::shared_ptr<const StoreState>& store,
                                                const std::optional<std::string>& tenant);

}  // namespace rillflow::detail
