// rillflowd: the projection daemon. Exit codes: 0 drained cleanly, 1 failure (bad config, missing
// plugin, unusable port, drain deadline passed), 2 usage error.

#include "app/application.hpp"
#include "app/logging.hpp"
#include "plugin/plugin_loader.hpp"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  std::string config_path = "/etc/rillflow/rillflowd.yaml";
  bool check_only = false;
  bool print_schema = false;
  CLI::App cli{
      "rillflowd - the Rillflow projection daemon: runs the projections of a YAML registry "
      "(plugins),\n"
      "serves /health/live, /health/ready, /metrics and /status over HTTP.\n"
      "Signals: SIGTERM/SIGINT drain and exit (a second one exits at once), SIGHUP reloads the "
      "config."};
  cli.set_version_flag("--version", std::string("rillflowd ") + rillflow::version());
  cli.add_option("--config,-c", config_path, "YAML config file")->capture_default_str();
  cli.add_flag("--check-config", check_only,
               "Validate the config and load its plugins, then exit (0: valid)");
  cli.add_flag("--print-config-schema", print_schema,
               "Print the config key table (key, type, default, reloadable, description) as JSON "
               "and exit");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (print_schema) {
    std::cout << rillflow::config::schema_json();
    return 0;
  }

  rillflow::config::Config cfg;
  try {
    cfg = rillflow::config::load(config_path);
    if (check_only) {
      std::cout << config_path << ": ok (" << rillflow::plugin::check_registry(cfg) << ")\n";
      return 0;
    }
  } catch (const rillflow::Error& e) {
    std::cerr << "rillflowd: " << (check_only ? "invalid config" : "cannot start") << ": "
              << e.what() << "\n";
    return 1;
  }

  rillflow::app::setup_logging(cfg.logging);
  try {
    rillflow::app::Application app(std::move(cfg), config_path);
    return app.run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
