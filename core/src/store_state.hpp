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
};

/// How the consumers of one appending transaction are woken (events/notifier.hpp). Made before
/// the transaction: in_transaction() says whether its appends NOTIFY themselves (delivered at
/// commit, no extra round trip; the store allows one such transaction at a time, once per
/// interval). After the transaction committed new events, committed() has the store's notifier
/// send one soon when they did not (one NOTIFY for a whole burst of such commits).
class AppendNotice {
 public:
  explicit AppendNotice(const StoreState& state);
  ~AppendNotice();  // gives the claim back
  AppendNotice(const AppendNotice&) = delete;
  AppendNotice& operator=(const AppendNotice&) = delete;

  bool in_transaction() const noexcept { return claimed_; }
  void committed() const;

 private:
  const StoreState& state_;
  const bool claimed_;
};

/// How the rest of core reaches a Store's shared state.
struct StoreAccess {
  static const std::shared_ptr<const StoreState>& state(const Store& store) { return store.state_; }
};

}  // namespace rillflow::detail
