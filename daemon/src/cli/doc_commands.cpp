// docs get / soft-delete / restore / index-advisor.

#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

namespace {

struct DocArgs {
  std::string id;
  std::string collection;
};

// The collection named with --collection, else the only one holding the id.
std::string collection_for(Context& ctx, const Uuid& id, const std::string& given) {
  if (!given.empty()) return given;
  const auto found = ctx.store().docs().collections_of(id);
  if (found.empty()) throw DocNotFound("(any collection)", to_string(id));
  if (found.size() > 1) {
    std::string list;
    for (const auto& c : found) list += (list.empty() ? "" : ", ") + c;
    throw UsageError("document " + to_string(id) + " exists in several collections (" + list +
                     "); pass --collection");
  }
  return found.front();
}

void add_id_options(CLI::App* cmd, DocArgs& args) {
  cmd->add_option("id", args.id, "Document UUID")->required();
  cmd->add_option("--collection,-c", args.collection,
                  "Collection (default: the only collection holding the id)");
}

// soft-delete and restore differ only in the call and the word printed.
void add_delete_toggle(CLI::App* parent, Context& ctx, const char* name, const char* help,
                       bool deleting) {
  static DocArgs args[2];
  auto& a = args[deleting ? 0 : 1];
  auto* cmd = parent->add_subcommand(name, help);
  add_id_options(cmd, a);
  cmd->callback([&ctx, &a, deleting] {
    ctx.run = [&ctx, &a, deleting] {
      const auto id = uuid_arg(a.id, "document id");
      const auto collection = collection_for(ctx, id, a.collection);
      const auto docs = ctx.store().docs();
      const auto version =
          deleting ? docs.soft_delete(collection, id) : docs.restore(collection, id);
      const char* state = deleting ? "soft-deleted" : "restored";
      if (ctx.json) {
        print_json(boost::json::object{{"collection", collection},
                                       {"id", to_string(id)},
                                       {"version", version},
                                       {"state", state}});
      } else {
        std::cout << state << " " << collection << "/" << to_string(id) << " (version " << version
                  << ")\n";
      }
      return 0;
    };
  });
}

}  // namespace

void add_doc_commands(CLI::App& app, Context& ctx) {
  auto* docs = app.add_subcommand("docs", "Read and administer JSON documents");
  docs->require_subcommand(1);

  static DocArgs get_args;
  static bool include_deleted = false;
  auto* get = docs->add_subcommand("get", "Print a document's JSON");
  add_id_options(get, get_args);
  get->add_flag("--include-deleted", include_deleted, "Also print a soft-deleted document");
  get->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto id = uuid_arg(get_args.id, "document id");
      const auto collection = collection_for(ctx, id, get_args.collection);
      const auto row = ctx.store().docs().get_any(collection, id);
      if (!row || (row->deleted && !include_deleted)) {
        throw DocNotFound(collection, to_string(id));
      }
      if (ctx.json) {
        print_json(boost::json::object{{"collection", collection},
                                       {"id", to_string(id)},
                                       {"version", row->version},
                                       {"deleted", row->deleted},
                                       {"doc", row->doc}});
      } else {
        print_json(row->doc);
      }
      return 0;
    };
  });

  add_delete_toggle(docs, ctx, "soft-delete", "Hide a document from reads and queries", true);
  add_delete_toggle(docs, ctx, "restore", "Undo a soft delete", false);

  static IndexRequest advice;
  auto* advisor = docs->add_subcommand(
      "index-advisor", "Print CREATE INDEX DDL for a field the query DSL filters or sorts on");
  advisor->add_option("--field", advice.field, "Field path, e.g. email or profile.city")
      ->required();
  advisor->add_flag("--gin", advice.gin, "A GIN index (for contains) instead of a btree");
  advisor->add_option("--collection,-c", advice.collection,
                      "Only this collection (a partial index)");
  advisor->callback([&ctx] {
    ctx.run = [&ctx] {
      // Needs no database: the DDL is built from the schema name and the request.
      const auto ddl = IndexAdvisor::ddl(ctx.effective_schema(), advice);
      if (ctx.json) {
        print_json(boost::json::object{{"ddl", ddl}});
      } else {
        std::cout << ddl;
      }
      return 0;
    };
  });
}

}  // namespace rillflow::cli
