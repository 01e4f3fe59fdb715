#pragma once
// What every copy of a Store shares.

#include "db/pool.hpp"

#include <rillflow/store.hpp>

#include <memory>
#include <optional>
#include <string>

namespace rillflow::detail {

struct TenantCache;  // tenants/tenant_state.hpp
}  // namespace rillflow::detail

namespace rillflow::events {
class Notifier;  // events/notifier.hpp
}  // namespace rillflow::events

namespace rillflow::detail {

struct StoreState {
  StoreOptions options;
  std::string quoted_schema;  ///< "schema", ready to paste (validated, quoted)
  std::shared_ptr<db::Pool> pool;
  std::shared_ptr<db::StatementMode> statement_mode;  ///< shared with the pool's connections
  bool behind_pooler = false;                         ///< measured once by StoreBuilder::build
  db::ConnInfo conninfo;  ///< what the pool connects with (holds the password: never print it)
  /// Set on a tenant's store (Store::tenant): its schema is tenant_<name>.
  std::optional<std::string> tenant;
  /// A base store's provisioned tenants, shared by its copies (null on a tenant's store).
  std::shared_ptr<TenantCache> tenants;
  /// Sends the NOTIFY of committed appends (null when notify_channel is empty); shared by the
  /// base store's copies and its tenants' stores.
  std::shared_ptr<events::Notifier> notifier;

  db::Pool& connections() const { return *pool; }
  /// `sql` with {schema} replaced by the quoted schema.
  std::string sql(std::string_view text) const;
  /// Call after a transaction that appended events to this schema committed: wakes its
  /// consumers (a NOTIFY soon after; see events/notifier.hpp).
  void appended() const;
};

/// How the rest of core reaches a Store's shared state.
struct StoreAccess {
  static const std::shared_ptr<const StoreState>& state(const Store& store) { return store.state_; }
};

}  // namespace rillflow::detail
