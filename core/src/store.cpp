#include "store_state.hpp"

#include "db/conninfo.hpp"
#include "db/sql.hpp"
#include "events/notifier.hpp"
#include "tenants/tenant_state.hpp"

#include <rillflow/error.hpp>
#include <rillflow/store.hpp>

#include <algorithm>

namespace rillflow {

namespace detail {
std::string StoreState::sql(std::string_view text) const {
  return db::with_schema(text, quoted_schema);
}

AppendNotice::AppendNotice(const StoreState& state)
    : state_(state), claimed_(state.notifier && state.notifier->claim_in_transaction()) {}

AppendNotice::~AppendNotice() {
  if (claimed_) state_.notifier->release_in_transaction();
}

void AppendNotice::committed() const {
  if (!claimed_ && state_.notifier)
    state_.notifier->poke(notify::payload_for(state_.options.schema));
}
}  // namespace detail

std::string_view to_string(PreparedStatements mode) noexcept {
  switch (mode) {
    case PreparedStatements::kOn:
      return "on";
    case PreparedStatements::kOff:
      return "off";
    case PreparedStatements::kAuto:
      break;
  }
  return "auto";
}

std::optional<PreparedStatements> parse_prepared_statements(std::string_view text) noexcept {
  if (text == "auto") return PreparedStatements::kAuto;
  if (text == "on") return PreparedStatements::kOn;
  if (text == "off") return PreparedStatements::kOff;
  return std::nullopt;
}

StoreBuilder Store::builder(std::string url) {
  return StoreBuilder(std::move(url));
}

Store Store::connect(std::string url) {
  return StoreBuilder(std::move(url)).build();
}

Store StoreBuilder::build() const {
  validate_identifier(options_.schema, "schema name");
  if (options_.session_defaults.idempotency_key) {
    throw Error(ErrorCode::kInvalidArgument,
                "session_defaults cannot carry an idempotency key (keys are per append)");
  }
  if (options_.session_defaults.headers && !options_.session_defaults.headers->is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "session_defaults headers must be a JSON object");
  }
  if (!options_.notify_channel.empty())
    validate_identifier(options_.notify_channel, "notify channel");
  auto info = db::ConnInfo::parse(url_);
  const auto seconds =
      std::max<long long>(2, std::chrono::duration_cast<std::chrono::seconds>(
                                 options_.connect_timeout + std::chrono::milliseconds(999))
                                 .count());
  info.set("connect_timeout", std::to_string(seconds));
  if (info.get("application_name").empty()) info.set("application_name", options_.application_name);
  // Notice a silently dead server or network path instead of waiting on it forever.
  if (info.get("keepalives").empty()) {
    info.set("keepalives", "1");
    info.set("keepalives_idle", "10");
    info.set("keepalives_interval", "5");
    info.set("keepalives_count", "3");
  }

  auto state = std::make_shared<detail::StoreState>();
  state->options = options_;
  state->quoted_schema = db::quote_ident(options_.schema);
  state->conninfo = info;
  state->tenants = std::make_shared<detail::TenantCache>();
  state->statement_mode =
      std::make_shared<db::StatementMode>(options_.prepared_statements, options_.log_sink);
  state->pool = std::make_unique<db::Pool>(info, options_.max_connections, options_.acquire_timeout,
                                           state->statement_mode);
  if (!options_.notify_channel.empty()) {
    state->notifier =
        std::make_shared<events::Notifier>(state->pool, options_.notify_channel, options_.log_sink);
  }
  // Fail fast with a clear ConnectionError, and see whether a pooler answers: PgBouncer, RDS
  // Proxy and the like send a process id of their own in the handshake.
  state->behind_pooler = db::with_connection(*state->pool, [](db::Connection& conn) {
    pqxx::nontransaction txn(conn.raw());
    const auto server_pid = txn.exec("select pg_backend_pid()")[0][0].as<int>();
    return server_pid != conn.raw().backendpid();
  });
  if (state->behind_pooler) {
    state->statement_mode->turn_off("a connection pooler answers at " + state->pool->target() +
                                    " (server and handshake process ids differ)");
    if (options_.prepared_statements == PreparedStatements::kOn && options_.log_sink) {
      options_.log_sink("a connection pooler answers at " + state->pool->target() +
                        " but prepared statements are on; a transaction pooler will fail them "
                        "(42P05 / 26000): use prepared_statements off or auto");
    }
  }
  return Store(std::move(state));
}

EventStore Store::events() const {
  return EventStore(state_);
}

Projections Store::projections() const {
  return Projections(state_);
}

DocumentStore Store::docs() const {
  return DocumentStore(state_);
}

SchemaManager Store::schema() const {
  return SchemaManager(state_);
}

Store Store::with_schema(std::string schema) const {
  validate_identifier(schema, "schema name");
  auto state = std::make_shared<detail::StoreState>(*state_);
  state->options.schema = std::move(schema);
  state->quoted_schema = db::quote_ident(state->options.schema);
  // Another schema is another registry (and no longer the tenant's own schema).
  state->tenant.reset();
  state->tenants = std::make_shared<detail::TenantCache>();
  return Store(std::move(state));
}

EnsuredTenant Store::ensure_tenant(std::string_view name) const {
  return tenants().ensure(name);
}

Store Store::tenant(std::string_view name) const {
  return tenants().open(name);
}

TenantRegistry Store::tenants() const {
  return TenantRegistry(state_);
}

const std::optional<std::string>& Store::tenant_name() const noexcept {
  return state_->tenant;
}

const StoreOptions& Store::options() const noexcept {
  return state_->options;
}

std::size_t Store::open_connections() const {
  return state_->pool->open_connections();
}

std::string Store::describe_target() const {
  return state_->pool->target();
}

bool Store::behind_pooler() const {
  return state_->behind_pooler;
}

bool Store::prepares_statements() const {
  return state_->statement_mode->prepared();
}

namespace {

void check_alias(std::string_view alias) {
  if (alias.empty() || alias.size() > 256) {
    throw Error(ErrorCode::kInvalidArgument, "a stream alias must be 1 to 256 characters long");
  }
  if (std::any_of(alias.begin(), alias.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    throw Error(ErrorCode::kInvalidArgument, "a stream alias must not contain control characters");
  }
}

}  // namespace

std::optional<Uuid> Store::find_stream_alias(std::string_view alias) const {
  check_alias(alias);
  const std::string select =
      state_->sql("select stream_id::text from {schema}.stream_aliases where alias = $1");
  const std::string key(alias);
  const auto id = db::without_transaction(state_->connections(),
                                          [&](auto& txn, auto& conn) -> std::optional<std::string> {
                                            auto r = db::exec(txn, conn, select, key);
                                            if (r.empty()) return std::nullopt;
                                            return r[0][0].template as<std::string>();
                                          });
  if (!id) return std::nullopt;
  return parse_uuid(*id);
}

Uuid Store::resolve_stream_alias(std::string_view alias) const {
  check_alias(alias);
  const std::string insert = state_->sql(
      "insert into {schema}.stream_aliases (alias, stream_id) values ($1, gen_random_uuid()) "
      "on conflict (alias) do nothing returning stream_id::text");
  const std::string select =
      state_->sql("select stream_id::text from {schema}.stream_aliases where alias = $1");
  const std::string key(alias);
  // Two statements on purpose: when a concurrent first call wins the insert, ours waits for it
  // and does nothing; only a new statement's snapshot sees the winner's row.
  const std::string id = db::without_transaction(state_->connections(), [&](auto& txn, auto& conn) {
    auto r = db::exec(txn, conn, insert, key);
    if (r.empty()) r = db::exec(txn, conn, select, key);
    if (r.empty()) throw Error(ErrorCode::kInternal, "stream alias vanished while resolving it");
    return r[0][0].template as<std::string>();
  });
  return parse_uuid(id);
}

}  // namespace rillflow
