// tenants ensure / status / list / archive / drop, and health schema --all-tenants / --tenant.

#include "cli/cli_context.hpp"

#include <rillflow/events/event.hpp>

#include <iostream>

namespace rillflow::cli {

namespace {

struct TenantArgs {
  std::string name;
  std::string output;
  bool force = false;
};

// A tenant name from the command line: an invalid one is a usage error, found before connecting.
std::string tenant_arg(const std::string& name) {
  try {
    validate_tenant_name(name);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return name;
}

Json time_json(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return nullptr;
  return Json(format_timestamp(*t));
}

boost::json::object info_json(const TenantInfo& t) {
  return boost::json::object{{"tenant", t.name},
                             {"schema", t.schema},
                             {"schema_version", t.schema_version},
                             {"created_at", format_timestamp(t.created_at)},
                             {"migrated_at", format_timestamp(t.migrated_at)},
                             {"archived_at", time_json(t.archived_at)}};
}

boost::json::object rows_json(const std::map<std::string, std::int64_t>& rows) {
  boost::json::object out;
  for (const auto& [table, n] : rows) out[table] = n;
  return out;
}

std::string rows_text(const std::map<std::string, std::int64_t>& rows) {
  std::string out;
  for (const auto& [table, n] : rows) {
    out += (out.empty() ? "" : ", ") + table + " " + std::to_string(n);
  }
  return out;
}

boost::json::object drift_json(const std::string& tenant, const std::string& schema,
                               const SchemaDrift& drift) {
  boost::json::array problems(drift.problems.begin(), drift.problems.end());
  return boost::json::object{
      {"tenant", tenant}, {"schema", schema}, {"ok", drift.ok()}, {"problems", problems}};
}

void print_drift(const std::string& label, const SchemaDrift& drift) {
  if (drift.ok()) {
    std::cout << label << ": ok (version " << SchemaManager::latest_version() << ")\n";
  } else {
    std::cout << label << ": drift\n";
    for (const auto& p : drift.problems) std::cout << "  - " << p << "\n";
  }
}

}  // namespace

int run_tenant_health(Context& ctx, const std::string& tenant) {
  auto registry = ctx.store().tenants();
  if (!tenant.empty()) {
    const auto name = tenant_arg(tenant);
    const auto schema = tenant_schema_of(name);
    const auto drift = registry.drift(name);
    if (ctx.json) {
      print_json(drift_json(name, schema, drift));
    } else {
      print_drift("tenant '" + name + "' (schema '" + schema + "')", drift);
    }
    return drift.ok() ? 0 : 1;
  }
  // The base schema holds the registry: it is checked first, then every registered tenant.
  const auto base = ctx.effective_schema();
  const auto base_drift = ctx.store().schema().drift();
  bool ok = base_drift.ok();
  boost::json::array tenants;
  if (!ctx.json) print_drift("schema '" + base + "'", base_drift);
  std::size_t drifted = 0;
  std::vector<TenantInfo> all;
  try {
    all = registry.list();
  } catch (const Error& e) {
    // No registry yet (the base schema's drift above says which migration is pending).
    if (e.code() != ErrorCode::kSchema) throw;
  }
  for (const auto& t : all) {
    const auto drift = registry.drift(t.name);
    if (!drift.ok()) {
      ok = false;
      ++drifted;
    }
    if (ctx.json) {
      tenants.push_back(drift_json(t.name, t.schema, drift));
    } else {
      print_drift("tenant '" + t.name + "' (schema '" + t.schema + "')", drift);
    }
  }
  if (ctx.json) {
    boost::json::array problems(base_drift.problems.begin(), base_drift.problems.end());
    print_json(boost::json::object{{"schema", base},
                                   {"ok", ok},
                                   {"problems", problems},
                                   {"tenants", tenants},
                                   {"drifted_tenants", drifted}});
  } else {
    std::cout << all.size() << " tenant(s) checked, " << drifted << " drifted\n";
  }
  return ok ? 0 : 1;
}

void add_tenant_commands(CLI::App& app, Context& ctx) {
  auto* tenants = app.add_subcommand(
      "tenants", "Schema-per-tenant: provision, inspect, archive and drop tenant schemas");
  tenants->require_subcommand(1);

  static TenantArgs ensure_args;
  auto* ensure = tenants->add_subcommand(
      "ensure",
      "Create and migrate tenant_<name> and register it (idempotent; safe to run concurrently)");
  ensure->add_option("name", ensure_args.name, "Tenant name: [a-z][a-z0-9_]{0,47}")->required();
  ensure->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto name = tenant_arg(ensure_args.name);
      const auto r = ctx.store().ensure_tenant(name);
      if (ctx.json) {
        auto out = info_json(r.tenant);
        out["created"] = r.created;
        out["applied"] = boost::json::array(r.applied.begin(), r.applied.end());
        print_json(out);
      } else if (!r.applied.empty() || r.created) {
        std::cout << "provisioned tenant '" << name << "' in schema '" << r.tenant.schema
                  << "' (applied " << r.applied.size() << " migration(s); now at version "
                  << r.tenant.schema_version << ")\n";
      } else {
        std::cout << "tenant '" << name << "' (schema '" << r.tenant.schema
                  << "') is current (version " << r.tenant.schema_version << ")\n";
      }
      return 0;
    };
  });

  static TenantArgs status_args;
  auto* status = tenants->add_subcommand(
      "status", "Schema version, drift and row counts of one tenant; exit 1 on drift");
  status->add_option("name", status_args.name, "Tenant name")->required();
  status->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto name = tenant_arg(status_args.name);
      const auto s = ctx.store().tenants().status(name);
      if (ctx.json) {
        auto out = info_json(s.tenant);
        out["latest_version"] = s.latest_version;
        out["ok"] = s.drift.ok();
        out["problems"] = boost::json::array(s.drift.problems.begin(), s.drift.problems.end());
        out["rows"] = rows_json(s.rows);
        print_json(out);
      } else {
        std::cout << "tenant '" << name << "' (schema '" << s.tenant.schema << "'): version "
                  << s.tenant.schema_version << " of " << s.latest_version << ", "
                  << (s.drift.ok() ? "no drift" : "drift") << "\n";
        for (const auto& p : s.drift.problems) std::cout << "  - " << p << "\n";
        std::cout << "  created " << format_timestamp(s.tenant.created_at) << ", migrated "
                  << format_timestamp(s.tenant.migrated_at) << ", archived "
                  << (s.tenant.archived_at ? format_timestamp(*s.tenant.archived_at) : "never")
                  << "\n";
        std::cout << "  rows: " << rows_text(s.rows) << "\n";
      }
      return s.drift.ok() ? 0 : 1;
    };
  });

  auto* list = tenants->add_subcommand("list", "Every registered tenant");
  list->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto all = ctx.store().tenants().list();
      if (ctx.json) {
        boost::json::array out;
        for (const auto& t : all) out.push_back(info_json(t));
        print_json(out);
      } else if (all.empty()) {
        std::cout << "no tenants in schema '" << ctx.effective_schema() << "'\n";
      } else {
        for (const auto& t : all) {
          std::cout << t.name << "  schema " << t.schema << "  version " << t.schema_version
                    << "  created " << format_timestamp(t.created_at) << "  archived "
                    << (t.archived_at ? format_timestamp(*t.archived_at) : "never") << "\n";
        }
      }
      return 0;
    };
  });

  static TenantArgs archive_args;
  auto* archive = tenants->add_subcommand(
      "archive",
      "Write a restorable dump of the tenant's schema (pg_dump custom format) and a manifest "
      "into the --output directory (restore: see docs/tenants.md)");
  archive->add_option("name", archive_args.name, "Tenant name")->required();
  archive
      ->add_option("--output,-o", archive_args.output,
                   "Directory to write <schema>.dump and manifest.json into (created; an "
                   "existing archive is never overwritten)")
      ->required();
  archive->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto name = tenant_arg(archive_args.name);
      const auto a = ctx.store().tenants().archive(name, archive_args.output);
      if (ctx.json) {
        print_json(boost::json::object{{"tenant", a.tenant},
                                       {"schema", a.schema},
                                       {"dump", a.dump.string()},
                                       {"manifest", a.manifest.string()},
                                       {"bytes", a.bytes},
                                       {"rows", rows_json(a.rows)}});
      } else {
        std::cout << "archived tenant '" << name << "' (schema '" << a.schema << "') to "
                  << a.dump.string() << " (" << a.bytes << " bytes; rows: " << rows_text(a.rows)
                  << ")\n"
                  << "restore: pg_restore --dbname \"$DATABASE_URL\" " << a.dump.string()
                  << " && rillflow tenants ensure " << name << "\n";
      }
      return 0;
    };
  });

  static TenantArgs drop_args;
  auto* drop = tenants->add_subcommand(
      "drop", "Drop the tenant's schema with all its data and unregister it (needs --force)");
  drop->add_option("name", drop_args.name, "Tenant name")->required();
  drop->add_flag("--force", drop_args.force, "Really drop it (archive it first)");
  drop->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto name = tenant_arg(drop_args.name);
      if (!drop_args.force) {
        throw UsageError("refusing to drop tenant '" + name + "' (schema '" +
                         tenant_schema_of(name) +
                         "') and all its data without --force (archive it first: rillflow "
                         "tenants archive " +
                         name + " --output DIR)");
      }
      ctx.store().tenants().drop(name);
      if (ctx.json) {
        print_json(boost::json::object{
            {"tenant", name}, {"schema", tenant_schema_of(name)}, {"dropped", true}});
      } else {
        std::cout << "dropped tenant '" << name << "' (schema '" << tenant_schema_of(name)
                  << "')\n";
      }
      return 0;
    };
  });
}

}  // namespace rillflow::cli
