#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

Store& Context::store() {
  if (!store_) {
    if (database_url.empty()) {
      throw UsageError("no database: pass --database-url or set DATABASE_URL");
    }
    store_ = Store::builder(database_url)
                 .schema(schema)
                 .max_connections(2)
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
