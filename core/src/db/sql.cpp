#include "db/sql.hpp"

#include <rillflow/error.hpp>
#include <rillflow/redact.hpp>

namespace rillflow::db {

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string with_schema(std::string_view sql, std::string_view quoted_schema) {
  static constexpr std::string_view kPlaceholder = "{schema}";
  std::string out;
  out.reserve(sql.size() + 64);
  std::size_t pos = 0;
  while (true) {
    const auto hit = sql.find(kPlaceholder, pos);
    out.append(sql.substr(pos, hit - pos));
    if (hit == std::string_view::npos) break;
    out.append(quoted_schema);
    pos = hit + kPlaceholder.size();
  }
  return out;
}

std::string trim_message(std::string_view message) {
  if (message.starts_with("ERROR:  ")) message.remove_prefix(8);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  std::string out = redact_secrets(message);
  for (auto& c : out) {
    if (c == '\n') c = ' ';
  }
  return out;
}

bool retry_without_prepared(Pool& pool) {
  auto* mode = pool.statement_mode();
  if (mode == nullptr || !mode->prepared() || mode->setting() != PreparedStatements::kAuto)
    return false;
  std::string state, message;
  try {
    throw;
  } catch (const pqxx::sql_error& e) {
    state = e.sqlstate();
    message = trim_message(e.what());
  } catch (const Error& e) {
    state = e.sqlstate();
    message = e.what();
  } catch (...) {
    return false;
  }
  if (!is_pooler_statement_error(state)) return false;
  return mode->turn_off("PostgreSQL said " + state + " (" + message +
                        "): a transaction pooler in front of " + pool.target() +
                        " moves named statements between sessions");
}

void rethrow_as_rillflow(const std::string& target, bool& connection_broken) {
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    connection_broken = true;
    throw CommitOutcomeUnknown("connection to PostgreSQL at " + target +
                               " broke during COMMIT; the transaction may or may not have been "
                               "applied (check before retrying): " +
                               trim_message(e.what()));
  } catch (const pqxx::broken_connection& e) {
    connection_broken = true;
    throw ConnectionError("lost the connection to PostgreSQL at " + target + ": " +
                          trim_message(e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    if (state.starts_with("08")) {
      connection_broken = true;
      throw ConnectionError("connection to PostgreSQL at " + target +
                            " failed: " + trim_message(e.what()));
    }
    if (state == "3F000" || state == "42P01") {
      throw Error(ErrorCode::kSchema,
                  "Rillflow's tables are missing (" + trim_message(e.what()) +
                      "); run `rillflow schema-sync` or Store::schema().sync()",
                  state);
    }
    if (state == "22P05" || state == "22021") {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(state == "22P05" ? "text holds \\u0000, which PostgreSQL cannot store"
                                               : "text is not valid UTF-8") +
                      " (" + trim_message(e.what()) + ")",
                  state);
    }
    if (is_pooler_statement_error(state)) {
      throw Error(ErrorCode::kDatabase,
                  "PostgreSQL error " + state + ": " + trim_message(e.what()) +
                      " (a transaction-pooling PgBouncer or proxy in front of " + target +
                      "? set database.prepared_statements to off or auto)",
                  state);
    }
    ErrorCode code = ErrorCode::kDatabase;
    if (state == "57014" || state == "55P03") code = ErrorCode::kTimeout;
    throw Error(code, "PostgreSQL error " + state + ": " + trim_message(e.what()), state);
  } catch (const pqxx::usage_error& e) {
    throw Error(ErrorCode::kInternal, std::string("database API misuse: ") + e.what());
  } catch (const pqxx::failure& e) {
    connection_broken = true;
    throw Error(ErrorCode::kDatabase, "database failure: " + trim_message(e.what()));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, std::string("unexpected error: ") + e.what());
  }
}

}  // namespace rillflow::db
