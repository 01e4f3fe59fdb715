// schema-plan, schema-sync, health schema.

#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

void add_schema_commands(CLI::App& app, Context& ctx) {
  auto* plan = app.add_subcommand(
      "schema-plan", "Print the DDL that schema-sync would run (prints nothing when current)");
  plan->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto sql = ctx.store().schema().plan_sql();
      if (ctx.json) {
        print_json(boost::json::object{{"schema", ctx.effective_schema()}, {"sql", sql}});
      } else {
        std::cout << sql;
      }
      return 0;
    };
  });

  auto* sync = app.add_subcommand(
      "schema-sync",
      "Apply pending migrations in one transaction (safe to run concurrently); exit 1 when the "
      "schema has drifted (see health schema)");
  sync->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto schema = ctx.effective_schema();
      const auto applied = ctx.store().schema().sync();
      // Every migration recorded is not enough: "current" also means health schema agrees.
      const auto drift = ctx.store().schema().drift();
      if (ctx.json) {
        boost::json::array versions(applied.begin(), applied.end());
        boost::json::array problems(drift.problems.begin(), drift.problems.end());
        print_json(boost::json::object{
            {"schema", schema}, {"applied", versions}, {"ok", drift.ok()}, {"problems", problems}});
      } else {
        if (!applied.empty()) {
          std::cout << "applied " << applied.size() << " migration(s) to schema '" << schema
                    << "'; now at version " << applied.back() << "\n";
        }
        if (!drift.ok()) {
          std::cout << "schema '" << schema
                    << "' has every migration recorded but has drifted (repair it by hand, or "
                       "restore it):\n";
          for (const auto& p : drift.problems) std::cout << "  - " << p << "\n";
        } else if (applied.empty()) {
          std::cout << "schema '" << schema << "' is current (version "
                    << SchemaManager::latest_version() << ")\n";
        }
      }
      return drift.ok() ? 0 : 1;
    };
  });

  auto* health = app.add_subcommand("health", "Health checks");
  health->require_subcommand(1);
  auto* schema = health->add_subcommand(
      "schema", "Compare the schema with the library's migrations; exit 1 on drift");
  static std::string tenant;
  static bool all_tenants = false;
  auto* tenant_opt =
      schema->add_option("--tenant", tenant, "Check one tenant's schema (tenant_<name>) instead");
  schema
      ->add_flag("--all-tenants", all_tenants,
                 "Check the schema and every registered tenant; exit 1 if any drifted")
      ->excludes(tenant_opt);
  schema->callback([&ctx] {
    ctx.run = [&ctx] {
      if (!tenant.empty() || all_tenants) return run_tenant_health(ctx, tenant);
      const auto name = ctx.effective_schema();
      const auto drift = ctx.store().schema().drift();
      if (ctx.json) {
        boost::json::array problems(drift.problems.begin(), drift.problems.end());
        print_json(
            boost::json::object{{"schema", name}, {"ok", drift.ok()}, {"problems", problems}});
      } else if (drift.ok()) {
        std::cout << "schema '" << name << "': ok (version " << SchemaManager::latest_version()
                  << ")\n";
      } else {
        std::cout << "schema '" << name << "': drift\n";
        for (const auto& p : drift.problems) std::cout << "  - " << p << "\n";
      }
      return drift.ok() ? 0 : 1;
    };
  });
}

}  // namespace rillflow::cli
