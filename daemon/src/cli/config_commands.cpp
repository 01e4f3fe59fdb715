// config check | reference

#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

void add_config_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("config", "The rillflowd YAML config");
  group->require_subcommand(1);
  static std::string file;
  auto* check = group->add_subcommand(
      "check", "Validate a config file (keys, types, values); exit 1 when invalid");
  check->add_option("file", file, "Config file")->required();
  check->callback([&ctx] {
    ctx.run = [] {
      const auto c = config::load(file);
      std::cout << file << ": ok (" << c.projections.size() << " projection(s))\n";
      return 0;
    };
  });
  auto* reference =
      group->add_subcommand("reference", "Print the reference table of every key (Markdown)");
  reference->callback([&ctx] {
    ctx.run = [] {
      std::cout << config::reference_markdown();
      return 0;
    };
  });
}

}  // namespace rillflow::cli
