#pragma once
// What every rillflow CLI command shares: global options, the store, output helpers.

#include <rillflow/rillflow.hpp>

#include "config/config.hpp"

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace rillflow::cli {

/// A command line that parsed but cannot run (e.g. no database URL): exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The command named something that does not exist (an alias, a document...): exit code 1.
class NotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Context {
  std::string database_url;
  std::string schema = "public";
  bool schema_given = false;  ///< --schema was on the command line (it beats the config's)
  std::string config_path;
  bool json = false;
  std::string prepared_statements;  ///< --prepared-statements; empty: the config's, else auto
  /// `projections --tenant NAME`: store() is that tenant's (TenantNotFound when unprovisioned).
  std::string tenant;
  /// The command chosen on the command line; returns the exit code.
  std::function<int()> run;

  /// Builds the store once; UsageError when no URL was given (--database-url, $DATABASE_URL,
  /// or the config's database section).
  Store& store();
  /// The --config file, parsed once (an empty config when none was given).
  const config::Config& config();
  /// The schema commands work on: --schema when given, else the config's, else public.
  std::string effective_schema();

 private:
  std::optional<Store> store_;
  std::optional<config::Config> config_;
};

/// A stream given as a UUID, or else as an alias. Text shaped like a UUID (only hex digits and
/// dashes, 32 to 40 characters) must be a valid one (UsageError otherwise). With `create` an
/// unknown alias is created; without, it is an error (reads never write).
Uuid stream_arg(Context& ctx, const std::string& text, bool create);
/// A JSON command-line argument; malformed text is a UsageError naming `what`, line and column.
Json json_arg(const std::string& text, const std::string& what);
/// A UUID command-line argument; anything else is a UsageError.
Uuid uuid_arg(const std::string& text, const std::string& what);
/// Validator for counts, limits and positions: a whole number, 0 or more.
CLI::Validator non_negative();
/// Prints a JSON value on one line.
void print_json(const Json& value);
/// From now on SIGINT and SIGTERM only set a flag, which stop_requested() reads: a long-running
/// command (tail --follow, a shadow rebuild) then stops between two steps instead of dying.
void catch_stop_signals();
bool stop_requested();

void add_schema_commands(CLI::App& app, Context& ctx);
void add_event_commands(CLI::App& app, Context& ctx);
void add_projection_commands(CLI::App& app, Context& ctx);
void add_config_commands(CLI::App& app, Context& ctx);
void add_dev_commands(CLI::App& app, Context& ctx);
void add_doc_commands(CLI::App& app, Context& ctx);
void add_snapshot_commands(CLI::App& app, Context& ctx);
/// `projections run-loop` (after add_projection_commands): rillflowd's loop in the foreground.
void add_run_loop_command(CLI::App& app, Context& ctx);
void add_subscription_commands(CLI::App& app, Context& ctx);
void add_tenant_commands(CLI::App& app, Context& ctx);
/// health schema --tenant NAME (that tenant) or --all-tenants (`tenant` empty: the base schema
/// and every registered tenant). Returns 1 when any of them drifted.
int run_tenant_health(Context& ctx, const std::string& tenant);

}  // namespace rillflow::cli
