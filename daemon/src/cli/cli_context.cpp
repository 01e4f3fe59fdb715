#include "cli/cli_context.hpp"

#include <csignal>
#include <iostream>

namespace rillflow::cli {

const config::Config& Context::config() {
  if (!config_)
    config_ = config_path.empty() ? config::parse("", "(no config)") : config::load(config_path);
  return *config_;
}

std::string Context::effective_schema() {
  return schema_given || config_path.empty() ? schema : config().schema;
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
    const std::string& prepared = !prepared_statements.empty() ? prepared_statements
                                  : config_path.empty()        ? std::string("auto")
                                                        : config().database.prepared_statements;
    try {
      store_ = Store::builder(url)
                   .schema(effective_schema())
                   .prepared_statements(
                       parse_prepared_statements(prepared).value_or(PreparedStatements::kAuto))
                   .max_connections(4)
                   .application_name("rillflow-cli")
                   .build();
    } catch (const Error& e) {
      // A malformed URL or schema name is a wrong command line, found before any query.
      if (e.code() == ErrorCode::kInvalidArgument) throw UsageError(e.what());
      throw;
    }
    if (!tenant.empty()) store_ = store_->tenant(tenant);
  }
  return *store_;
}

Uuid stream_arg(Context& ctx, const std::string& text, bool create) {
  const bool uuid_shaped = text.size() >= 32 && text.size() <= 40 &&
                           text.find_first_not_of("0123456789abcdefABCDEF-") == std::string::npos;
  if (uuid_shaped) return uuid_arg(text, "stream");
  if (create) return ctx.store().resolve_stream_alias(text);
  if (auto id = ctx.store().find_stream_alias(text)) return *id;
  throw NotFound("no stream alias '" + text + "' in schema '" + ctx.effective_schema() + "'");
}

Json json_arg(const std::string& text, const std::string& what) {
  try {
    return parse_json(text);
  } catch (const Error& e) {
    throw UsageError(what + ": " + e.what());
  }
}

Uuid uuid_arg(const std::string& text, const std::string& what) {
  try {
    return parse_uuid(text);
  } catch (const Error& e) {
    throw UsageError(what + ": " + e.what());
  }
}

CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const bool digits =
            !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        if (digits && value.size() <= 18) return {};
        if (!value.empty() && value[0] == '-') return "must be 0 or more, not " + value;
        if (digits) return "is too large: " + value.substr(0, 24);
        return "must be a whole number (0 or more), not '" + value.substr(0, 40) + "'";
      },
      "N>=0");
}

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) {
  g_stop = 1;
}
}  // namespace

void catch_stop_signals() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool stop_requested() {
  return g_stop != 0;
}

void print_json(const Json& value) {
  std::cout << boost::json::serialize(value) << "\n";
}

}  // namespace rillflow::cli
