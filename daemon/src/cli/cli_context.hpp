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

struct Context {
  std::string database_url;
  std::string schema = "public";
  bool schema_given = false;  ///< --schema was on the command line (it beats the config's)
  std::string config_path;
  bool json = false;
  std::string prepared_statements;  ///< --prepared-statements; empty: the config's, else auto
  /// The command chosen on the command line; returns the exit code.
  std::function<int()> run;

  /// Builds the store once; UsageError when no URL was given (--database-url, $DATABASE_URL,
  /// or the config's database section).
  Store& store();
  /// The --config file, parsed once (an empty config when none was given).
  const config::Config& config();

 private:
  std::optional<Store> store_;
  std::optional<config::Config> config_;
};

/// A stream given as a UUID, or else as an alias (resolved, created on first use).
Uuid stream_arg(Context& ctx, const std::string& text);
/// Prints a JSON value on one line.
void print_json(const Json& value);

void add_schema_commands(CLI::App& app, Context& ctx);
void add_event_commands(CLI::App& app, Context& ctx);
void add_projection_commands(CLI::App& app, Context& ctx);
void add_config_commands(CLI::App& app, Context& ctx);
void add_dev_commands(CLI::App& app, Context& ctx);
void add_doc_commands(CLI::App& app, Context& ctx);

}  // namespace rillflow::cli
