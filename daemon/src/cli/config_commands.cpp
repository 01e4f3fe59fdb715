// config check | reference

#include "cli/cli_context.hpp"
#include "plugin/plugin_loader.hpp"

#include <iostream>

namespace rillflow::cli {

void add_config_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("config", "The rillflowd YAML config");
  group->require_subcommand(1);
  static std::string file;
  auto* check = group->add_subcommand(
      "check",
      "Validate a config file like rillflowd --check-config: keys, types and values, then load "
      "every plugin of the registry; exit 1 when invalid");
  check->add_option("file", file, "Config file")->required();
  check->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto c = config::load(file);
      const auto summary = plugin::check_registry(c);
      if (ctx.json) {
        print_json(boost::json::object{{"file", file}, {"ok", true}, {"summary", summary}});
      } else {
        std::cout << file << ": ok (" << summary << ")\n";
      }
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
