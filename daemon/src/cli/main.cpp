// rillflow: the admin CLI. Exit codes: 0 ok, 1 the operation failed, 2 usage error.

#include "cli/cli_context.hpp"

#include <iostream>

int main(int argc, char** argv) {
  rillflow::cli::Context ctx;
  CLI::App app{
      "rillflow - admin CLI for the Rillflow event and document store on PostgreSQL.\n"
      "Exit codes: 0 success, 1 the operation failed, 2 usage error."};
  app.set_version_flag("--version", std::string("rillflow ") + rillflow::version());
  app.require_subcommand(1);
  app.add_option("--database-url", ctx.database_url,
                 "PostgreSQL URL (postgresql://user@host:port/db or key=value); never printed")
      ->envname("DATABASE_URL");
  app.add_option("--schema", ctx.schema,
                 "Schema holding Rillflow's tables (overrides the config's)")
      ->capture_default_str();
  app.add_option("--config", ctx.config_path,
                 "rillflowd YAML config: database, schema and the projection registry (plugins)");
  app.add_flag("--json", ctx.json, "Print machine-readable JSON instead of text");
  app.add_option("--prepared-statements", ctx.prepared_statements,
                 "auto | on | off: named prepared statements (off behind a transaction pooler "
                 "such as PgBouncer; default: the config's, else auto)")
      ->check(CLI::IsMember({"auto", "on", "off"}));

  rillflow::cli::add_schema_commands(app, ctx);
  rillflow::cli::add_event_commands(app, ctx);
  rillflow::cli::add_projection_commands(app, ctx);
  rillflow::cli::add_config_commands(app, ctx);
  rillflow::cli::add_dev_commands(app, ctx);
  rillflow::cli::add_doc_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  ctx.schema_given = app.count("--schema") > 0;
  try {
    return ctx.run ? ctx.run() : 2;
  } catch (const rillflow::cli::UsageError& e) {
    std::cerr << "rillflow: " << e.what() << "\n";
    return 2;
  } catch (const rillflow::Error& e) {
    std::cerr << "rillflow: error [" << rillflow::error_code_name(e.code()) << "]: " << e.what()
              << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "rillflow: error: " << e.what() << "\n";
    return 1;
  }
}
