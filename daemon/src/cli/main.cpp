// rillflow: the admin CLI. Exit codes: 0 ok, 1 the operation failed, 2 usage error.

#include "cli/cli_context.hpp"

#include <iostream>

namespace {

constexpr const char* kExitCodes =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the command ran and could not do its job: the database is unreachable or refused a\n"
    "     statement, a named thing does not exist, the schema drifted, work is left over\n"
    "  2  the command line is wrong and nothing was run: an unknown command or option, a\n"
    "     missing argument, a value that is malformed (not JSON, not a UUID, a negative\n"
    "     count), a malformed database URL or schema name, no database given.\n"
    "     Checked before connecting to the database.\n"
    "Global options (--database-url, --schema, --config, --json) go before or after the\n"
    "command. Secrets never appear in output: URLs are shown without user and password.";

// The command word CLI11 could not place, with the command it was given to ("" at the top).
// Returns false when every word is a known command (the error lies elsewhere).
bool unknown_command(CLI::App& app, int argc, char** argv, std::string& word, std::string& parent) {
  CLI::App* current = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") return false;
    if (arg.starts_with("-")) {
      if (arg.find('=') != std::string::npos) continue;
      for (CLI::App* scope = current; scope != nullptr; scope = scope->get_parent()) {
        if (const auto* opt = scope->get_option_no_throw(arg)) {
          if (opt->get_items_expected_max() > 0) ++i;
          break;
        }
      }
      continue;
    }
    const auto subs = current->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) return false;  // a leaf command: the rest are its arguments
    CLI::App* next = nullptr;
    for (auto* sub : subs) {
      if (sub->check_name(arg)) next = sub;
    }
    if (next == nullptr) {
      word = arg;
      parent = current == &app ? "" : current->get_name();
      return true;
    }
    current = next;
  }
  return false;
}

void fail(const std::string& message) {
  std::cerr << "rillflow: " << rillflow::redact_secrets(message) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  // PostgreSQL's chatter (NOTICE: ... already exists, skipping) is not the command's output;
  // warnings and errors are kept, on stderr.
  rillflow::set_database_notice_sink([](std::string_view message) {
    if (message.starts_with("NOTICE") || message.starts_with("INFO") ||
        message.starts_with("DEBUG") || message.starts_with("LOG")) {
      return;
    }
    std::cerr << "rillflow: PostgreSQL: " << message << "\n";
  });
  rillflow::cli::Context ctx;
  CLI::App app{"rillflow - admin CLI for the Rillflow event and document store on PostgreSQL."};
  app.footer(kExitCodes);
  app.set_version_flag("--version", std::string("rillflow ") + rillflow::version());
  app.require_subcommand(1);
  // Subcommands hand options they do not know to their parents, so the global options are
  // accepted after the command too (set before the subcommands: they inherit it).
  app.fallthrough();
  app.add_option("--database-url", ctx.database_url,
                 "PostgreSQL URL (postgresql://user@host:port/db or key=value); never printed")
      ->envname("DATABASE_URL");
  app.add_option("--schema", ctx.schema,
                 "Schema holding Rillflow's tables (overrides the config's)")
      ->capture_default_str();
  app.add_option("--config", ctx.config_path,
                 "rillflowd YAML config: database, schema and the projection registry (plugins)")
      ->envname("RILLFLOW_CONFIG");
  app.add_flag("--json", ctx.json,
               "Print exactly one JSON document on stdout instead of text (progress goes to "
               "stderr)");
  app.add_option("--prepared-statements", ctx.prepared_statements,
                 "auto | on | off: named prepared statements (off behind a transaction pooler "
                 "such as PgBouncer; default: the config's, else auto)")
      ->check(CLI::IsMember({"auto", "on", "off"}));

  rillflow::cli::add_schema_commands(app, ctx);
  rillflow::cli::add_event_commands(app, ctx);
  rillflow::cli::add_projection_commands(app, ctx);
  rillflow::cli::add_run_loop_command(app, ctx);
  rillflow::cli::add_config_commands(app, ctx);
  rillflow::cli::add_dev_commands(app, ctx);
  rillflow::cli::add_doc_commands(app, ctx);
  rillflow::cli::add_snapshot_commands(app, ctx);
  rillflow::cli::add_subscription_commands(app, ctx);
  rillflow::cli::add_tenant_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string word, parent;
    if (unknown_command(app, argc, argv, word, parent)) {
      fail("unknown command '" + word + "'" + (parent.empty() ? "" : " for '" + parent + "'") +
           " (see rillflow " + (parent.empty() ? "" : parent + " ") + "--help)");
    } else {
      fail(std::string(e.what()) + " (see --help)");
    }
    return 2;
  }
  ctx.schema_given = app.count("--schema") > 0;
  try {
    return ctx.run ? ctx.run() : 2;
  } catch (const rillflow::cli::UsageError& e) {
    fail(e.what());
    return 2;
  } catch (const rillflow::cli::NotFound& e) {
    fail(std::string("not found: ") + e.what());
    return 1;
  } catch (const rillflow::Error& e) {
    fail(std::string("error [") + std::string(rillflow::error_code_name(e.code())) +
         "]: " + e.what());
    return 1;
  } catch (const std::exception& e) {
    fail(std::string("error: ") + e.what());
    return 1;
  }
}
