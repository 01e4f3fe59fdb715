#pragma once
// Whether a pool's connections prepare statements under names. Private to rillflow::core.
//
// Named prepared statements live in a server session. Behind a transaction-pooling pooler
// (PgBouncer pool_mode=transaction, RDS Proxy, ...) consecutive transactions of one client
// connection run on different server sessions, so a name prepared by one is missing (26000) or
// already taken (42P05) in the next. With prepared statements off every statement goes out
// unnamed with its parameters in one Parse/Bind/Execute (libpqxx exec_params), which needs
// nothing from the session.

#include <rillflow/store.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace rillflow::db {

/// Shared by a pool and its connections; thread-safe.
class StatementMode {
 public:
  using Log = std::function<void(std::string_view)>;
  StatementMode(PreparedStatements setting, Log log)
      : setting_(setting), prepared_(setting != PreparedStatements::kOff), log_(std::move(log)) {}

  PreparedStatements setting() const noexcept { return setting_; }
  /// True while statements are prepared under names.
  bool prepared() const noexcept { return prepared_.load(std::memory_order_acquire); }
  /// Under kAuto: prepares nothing from now on and logs `why` (once). Returns false (and does
  /// nothing) when the setting is not kAuto or statements are already off.
  bool turn_off(const std::string& why);

 private:
  const PreparedStatements setting_;
  std::atomic<bool> prepared_;
  std::mutex mutex_;
  Log log_;
};

/// True for the SQLSTATEs a pooler's lost or foreign session produces for named statements:
/// 42P05 (duplicate_prepared_statement) and 26000 (invalid_sql_statement_name).
inline bool is_pooler_statement_error(std::string_view sqlstate) noexcept {
  return sqlstate == "42P05" || sqlstate == "26000";
}

}  // namespace rillflow::db
