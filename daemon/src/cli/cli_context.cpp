#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

const config::Config& Context::config() {
  if (!config_) config_ = config_path.empty() ? config::Config{} : config::load(config_path);
  return *config_;
}

Store& Context::store() {
  if (!store_) {
    std::string url = database_url;
    if (url.empty() && !config_path.empty()) {
      url = config::resolve_database_url(config().database).value_or("");
    }
    if (url.empty()) {
      throw UsageError(
          "no database: pass --database-url, set DATABASE_URL, or name one in --config");
    }
    const std::string& chosen = schema_given || config_path.empty() ? schema : config().schema;
    const std::string& prepared = !prepared_statements.empty() ? prepared_statements
                                  : config_path.empty()        ? std::string("auto")
                                                        : config().database.prepared_statements;
    store_ = Store::builder(url)
                 .schema(chosen)
                 .prepared_statements(
                     parse_prepared_statements(prepared).value_or(PreparedStatements::kAuto))
                 .max_connections(4)
                 .application_name("rillflow-cli")
                 .build();
  }
  return *store_;
}

Uuid stream_arg(Context& ctx, const std::string& text) {
  if (text.size() == 36 && text[8] == '-') return parse_uuid(text);
  return ctx.store().resolve_stream_alias(text);
}

void print_json(const Json& value) {
  std::cout << boost::json::serialize(value) << "\n";
}

}  // namespace rillflow::cli
