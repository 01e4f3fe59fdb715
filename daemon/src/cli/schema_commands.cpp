// schema-plan, schema-sync, health schema.

#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

void add_schema_commands(CLI::App& app, Context& ctx) {
  auto* plan = app.add_subcommand(
      "schema-plan", "Print the DDL that schema-sync would run (prints nothing when current)");
  plan->callback([&ctx] {
    ctx.run = [&ctx] {
      std::cout << ctx.store().schema().plan_sql();
      return 0;
    };
  });

  auto* sync = app.add_subcommand(
      "schema-sync", "Apply pending migrations in one transaction (safe to run concurrently)");
  sync->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto applied = ctx.store().schema().sync();
      if (ctx.json) {
        boost::json::array versions(applied.begin(), applied.end());
        print_json(boost::json::object{{"schema", ctx.schema}, {"applied", versions}});
      } else if (applied.empty()) {
        std::cout << "schema '" << ctx.schema << "' is current (version "
                  << SchemaManager::latest_version() << ")\n";
      } else {
        std::cout << "applied " << applied.size() << " migration(s) to schema '" << ctx.schema
                  << "'; now at version " << applied.back() << "\n";
      }
      return 0;
    };
  });

  auto* health = app.add_subcommand("health", "Health checks");
  health->require_subcommand(1);
  auto* schema = health->add_subcommand(
      "schema", "Compare the schema with the library's migrations; exit 1 on drift");
  schema->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto drift = ctx.store().schema().drift();
      if (ctx.json) {
        boost::json::array problems(drift.problems.begin(), drift.problems.end());
        print_json(boost::json::object{
            {"schema", ctx.schema}, {"ok", drift.ok()}, {"problems", problems}});
      } else if (drift.ok()) {
        std::cout << "schema '" << ctx.schema << "': ok (version "
                  << SchemaManager::latest_version() << ")\n";
      } else {
        std::cout << "schema '" << ctx.schema << "': drift\n";
        for (const auto& p : drift.problems) std::cout << "  - " << p << "\n";
      }
      return drift.ok() ? 0 : 1;
    };
  });
}

}  // namespace rillflow::cli
