#include <rillflow/error.hpp>
#include <rillflow/events/event.hpp>
#include <rillflow/json.hpp>
#include <rillflow/store.hpp>
#include <rillflow/tenants/tenant_registry.hpp>
#include <rillflow/version.hpp>

#include "db/sql.hpp"
#include "embedded/pg_tools.hpp"
#include "schema/schema_sync.hpp"
#include "tenants/tenant_state.hpp"
#include "util/process.hpp"

#include <algorithm>
#include <array>
#include <fstream>

namespace fs = std::filesystem;

namespace rillflow {

namespace {

constexpr std::string_view kPrefix = kTenantSchemaPrefix;

// The registry's columns as TenantInfo reads them (times as microseconds since the epoch).
constexpr const char* kColumns =
    "name, schema_name, (extract(epoch from created_at) * 1000000)::bigint, schema_version, "
    "(extract(epoch from migrated_at) * 1000000)::bigint, "
    "(extract(epoch from archived_at) * 1000000)::bigint";

// Tables whose rows status() and archive() count.
constexpr std::array<std::string_view, 8> kCountedTables{
    "streams",    "events", "docs",           "snapshots",
    "work_units", "parked", "stream_aliases", "idempotency_keys"};

std::chrono::system_clock::time_point from_micros(std::int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

TenantInfo info_of(const pqxx::row& row) {
  TenantInfo t;
  t.name = row[0].as<std::string>();
  t.schema = row[1].as<std::string>();
  t.created_at = from_micros(row[2].as<std::int64_t>());
  t.schema_version = row[3].as<int>();
  t.migrated_at = from_micros(row[4].as<std::int64_t>());
  if (!row[5].is_null()) t.archived_at = from_micros(row[5].as<std::int64_t>());
  return t;
}

// A name as an error message may show it: printable ASCII, other bytes as \xNN, at most 64.
std::string shown(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : name.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (name.size() > 64) out += "...";
  return out;
}

void require_base(const detail::StoreState& state) {
  if (state.tenant || !state.tenants) {
    throw Error(ErrorCode::kInvalidArgument, "this store belongs to tenant '" +
                                                 state.tenant.value_or("?") +
                                                 "'; manage tenants from the base store");
  }
}

std::optional<TenantInfo> find_in(pqxx::transaction_base& txn, db::Connection& conn,
                                  const detail::StoreState& base, const std::string& name) {
  const auto r = db::exec(
      txn, conn,
      base.sql(std::string("select ") + kColumns + " from {schema}.tenants where name = $1"), name);
  if (r.empty()) return std::nullopt;
  return info_of(r[0]);
}

TenantInfo require_registered(const detail::StoreState& base, const std::string& name) {
  auto found = db::without_transaction(base.connections(), [&](auto& txn, db::Connection& conn) {
    return find_in(txn, conn, base, name);
  });
  if (!found) throw TenantNotFound(name, std::string(kPrefix) + name);
  return *found;
}

// Row counts of the counted tables that exist in `schema` (a drifted schema may lack some).
std::map<std::string, std::int64_t> count_rows(pqxx::transaction_base& txn,
                                               const detail::StoreState& tenant) {
  std::map<std::string, std::int64_t> out;
  std::string sql;
  for (const auto table : kCountedTables) {
    const auto exists = txn.exec_params("select to_regclass($1) is not null",
                                        tenant.quoted_schema + "." + std::string(table));
    if (!exists[0][0].as<bool>()) continue;
    if (!sql.empty()) sql += " union all ";
    // Table names are the library's constants; the schema is a validated, quoted name.
    sql += "select '" + std::string(table) + "', count(*) from " + tenant.quoted_schema + "." +
           std::string(table);
  }
  if (sql.empty()) return out;
  for (const auto& row : txn.exec(sql)) out[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  return out;
}

}  // namespace

void validate_tenant_name(std::string_view name) {
  std::string why;
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (name.empty()) {
    why = "it is empty";
  } else if (name.size() > kMaxTenantNameLength) {
    why = "it is longer than 48 characters";
  } else if (!(name[0] >= 'a' && name[0] <= 'z')) {
    why = "it must start with a letter a-z";
  } else if (!std::all_of(name.begin(), name.end(), allowed)) {
    why = "only a-z, 0-9 and _ are allowed";
  } else if (name == "public" || name == "information_schema" || name.starts_with("pg_")) {
    why = "it is reserved (public, information_schema and pg_* belong to PostgreSQL)";
  }
  if (!why.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "invalid tenant name '" + shown(name) + "': " + why +
                                                 " (tenant names match [a-z][a-z0-9_]{0,47})");
  }
}

std::string tenant_schema_of(std::string_view name) {
  validate_tenant_name(name);
  return std::string(kPrefix) + std::string(name);
}

namespace detail {

std::shared_ptr<const StoreState> make_tenant_state(const StoreState& base,
                                                    const std::string& name) {
  auto state = std::make_shared<StoreState>(base);
  state->options.schema = std::string(kPrefix) + name;
  state->quoted_schema = db::quote_ident(state->options.schema);
  state->tenant = name;
  state->tenants.reset();  // a tenant's store has no tenants (and no cycle through the cache)
  return state;
}

std::shared_ptr<const StoreState> open_tenant(const StoreState& base, std::string_view name) {
  validate_tenant_name(name);
  require_base(base);
  const std::string key(name);
  {
    std::lock_guard lock(base.tenants->mutex);
    if (const auto it = base.tenants->entries.find(key); it != base.tenants->entries.end()) {
      return it->second.state;
    }
  }
  const auto info = require_registered(base, key);
  auto state = make_tenant_state(base, key);
  std::lock_guard lock(base.tenants->mutex);
  return base.tenants->entries.try_emplace(key, TenantCache::Entry{state, info, false})
      .first->second.state;
}

bool tenant_schema_gone(const StoreState& tenant) {
  return db::without_transaction(tenant.connections(), [&](auto& txn, db::Connection& conn) {
    return db::exec(txn, conn, "select to_regnamespace($1) is null", tenant.options.schema)[0][0]
        .template as<bool>();
  });
}

void forget_tenant(const StoreState& base, const std::string& name) {
  if (!base.tenants) return;
  std::lock_guard lock(base.tenants->mutex);
  base.tenants->entries.erase(name);
}

std::shared_ptr<const StoreState> route_session(const std::shared_ptr<const StoreState>& store,
                                                const std::optional<std::string>& tenant) {
  if (store->tenant) {
    if (tenant && *tenant != *store->tenant) {
      throw Error(ErrorCode::kInvalidArgument,
                  "this session belongs to tenant '" + *store->tenant +
                      "' (Store::tenant) and cannot work for tenant '" + shown(*tenant) + "'");
    }
    return store;
  }
  const bool per_tenant = store->options.tenant_strategy == TenantStrategy::kSchemaPerTenant;
  if (!tenant) {
    if (per_tenant) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tenant required: the store uses schema-per-tenant; set "
                  "session.context().tenant (or use Store::tenant(name).session())");
    }
    return store;
  }
  if (!per_tenant) {
    throw Error(ErrorCode::kInvalidArgument,
                "the session names tenant '" + shown(*tenant) +
                    "' but the store is single-tenant: build it with "
                    "tenant_strategy(TenantStrategy::kSchemaPerTenant), or use Store::tenant()");
  }
  return open_tenant(*store, *tenant);
}

}  // namespace detail

EnsuredTenant TenantRegistry::ensure(std::string_view name) const {
  validate_tenant_name(name);
  require_base(*state_);
  const std::string key(name);
  {
    std::lock_guard lock(state_->tenants->mutex);
    if (const auto it = state_->tenants->entries.find(key);
        it != state_->tenants->entries.end() && it->second.ensured) {
      return EnsuredTenant{it->second.info, {}, false, true};
    }
  }
  const auto& base = *state_;
  auto tenant_state = detail::make_tenant_state(base, key);
  auto result = db::in_transaction(base.connections(), [&](pqxx::work& txn, db::Connection& conn) {
    const auto registry =
        txn.exec_params("select to_regclass($1) is not null", base.quoted_schema + ".tenants");
    if (!registry[0][0].as<bool>()) {
      throw Error(ErrorCode::kSchema,
                  "schema '" + base.options.schema +
                      "' has no tenant registry (migration 7, tenants): run `rillflow "
                      "schema-sync` or Store::schema().sync() first");
    }
    EnsuredTenant out;
    // Under the tenant schema's transaction-scoped advisory lock (the one schema-sync takes):
    // concurrent callers wait here, and the later ones find nothing left to apply.
    out.applied = schema::sync_in(txn, *tenant_state);
    const auto inserted = db::exec(
        txn, conn,
        base.sql(std::string("insert into {schema}.tenants as t (name, schema_name, "
                             "schema_version) values ($1, $2, $3) on conflict (name) do update "
                             "set schema_version = excluded.schema_version, migrated_at = now() "
                             "where t.schema_version <> excluded.schema_version returning ") +
                 kColumns + ", (xmax = 0)"),
        key, tenant_state->options.schema, SchemaManager::latest_version());
    if (!inserted.empty()) {
      out.tenant = info_of(inserted[0]);
      out.created = inserted[0][6].as<bool>();
    } else {
      out.tenant = *find_in(txn, conn, base, key);
    }
    return out;
  });
  std::lock_guard lock(state_->tenants->mutex);
  state_->tenants->entries.insert_or_assign(
      key, detail::TenantCache::Entry{tenant_state, result.tenant, true});
  return result;
}

Store TenantRegistry::open(std::string_view name) const {
  return Store(detail::open_tenant(*state_, name));
}

std::optional<TenantInfo> TenantRegistry::find(std::string_view name) const {
  validate_tenant_name(name);
  require_base(*state_);
  const std::string key(name);
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return find_in(txn, conn, *state_, key);
  });
}

std::vector<TenantInfo> TenantRegistry::list() const {
  require_base(*state_);
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    std::vector<TenantInfo> out;
    const auto rows = db::exec(
        txn, conn,
        state_->sql(std::string("select ") + kColumns + " from {schema}.tenants order by name"));
    for (const auto& row : rows) out.push_back(info_of(row));
    return out;
  });
}

SchemaDrift TenantRegistry::drift(std::string_view name) const {
  validate_tenant_name(name);
  require_base(*state_);
  const std::string key(name);
  require_registered(*state_, key);
  return SchemaManager(detail::make_tenant_state(*state_, key)).drift();
}

TenantStatus TenantRegistry::status(std::string_view name) const {
  validate_tenant_name(name);
  require_base(*state_);
  const std::string key(name);
  TenantStatus out;
  out.tenant = require_registered(*state_, key);
  out.latest_version = SchemaManager::latest_version();
  const auto tenant_state = detail::make_tenant_state(*state_, key);
  out.drift = SchemaManager(tenant_state).drift();
  out.rows = db::without_transaction(state_->connections(), [&](auto& txn, db::Connection&) {
    return count_rows(txn, *tenant_state);
  });
  return out;
}

TenantArchive TenantRegistry::archive(std::string_view name, const fs::path& directory) const {
  validate_tenant_name(name);
  require_base(*state_);
  const std::string key(name);
  require_registered(*state_, key);
  const auto tenant_state = detail::make_tenant_state(*state_, key);
  TenantArchive out;
  out.tenant = key;
  out.schema = tenant_state->options.schema;
  out.directory = directory;
  out.dump = directory / (out.schema + ".dump");
  out.manifest = directory / "manifest.json";
  std::error_code ec;
  if (fs::exists(out.dump, ec) || fs::exists(out.manifest, ec)) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + directory.string() +
                    "' already holds an archive; choose another "
                    "output directory (archives are never overwritten)");
  }
  const auto pg_dump = embedded::find_pg_tool("pg_dump");
  fs::create_directories(directory, ec);
  if (ec) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot create '" + directory.string() + "': " + ec.message());
  }
  // pg_dump connects like the pool, with the password in its environment (never on its
  // command line), and dumps the snapshot the row counts are taken in: the manifest describes
  // exactly what the dump holds.
  auto target = state_->conninfo;
  const auto password = target.get("password");
  target.erase("password");
  std::vector<std::string> env;
  if (!password.empty()) env.push_back("PGPASSWORD=" + password);
  db::with_connection(state_->connections(), [&](db::Connection& conn) {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> txn(conn.raw());
    const auto snapshot = txn.exec("select pg_export_snapshot()")[0][0].as<std::string>();
    out.rows = count_rows(txn, *tenant_state);
    const auto r = util::run_process(
        {pg_dump.string(), "--format=custom", "--schema=" + out.schema, "--snapshot=" + snapshot,
         "--file=" + out.dump.string(), "--dbname=" + target.to_conninfo()},
        env);
    if (r.exit_code != 0) {
      throw Error(ErrorCode::kInternal, pg_dump.string() + " failed (exit " +
                                            std::to_string(r.exit_code) +
                                            "): " + db::trim_message(r.output));
    }
    txn.commit();
  });
  out.bytes = fs::file_size(out.dump, ec);
  boost::json::object rows;
  for (const auto& [table, n] : out.rows) rows[table] = n;
  const auto now = std::chrono::system_clock::now();
  boost::json::object manifest{
      {"tenant", key},
      {"schema", out.schema},
      {"schema_version", SchemaManager::latest_version()},
      {"rillflow_version", std::string(version())},
      {"archived_at", format_timestamp(now)},
      {"dump", out.dump.filename().string()},
      {"format", "pg_dump custom (-Fc)"},
      {"rows", rows},
      {"restore", "pg_restore --dbname \"$DATABASE_URL\" " + out.dump.filename().string() +
                      " && rillflow tenants ensure " + key + " --database-url \"$DATABASE_URL\""}};
  std::ofstream(out.manifest) << boost::json::serialize(manifest) << "\n";
  db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    db::exec(txn, conn,
             state_->sql("update {schema}.tenants set archived_at = now() where name = $1"), key);
  });
  return out;
}

void TenantRegistry::drop(std::string_view name) const {
  validate_tenant_name(name);
  require_base(*state_);
  const std::string key(name);
  const auto tenant_state = detail::make_tenant_state(*state_, key);
  db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
    txn.exec_params("select pg_advisory_xact_lock(hashtextextended($1, 0))",
                    "rillflow.schema." + tenant_state->options.schema);
    const auto removed = db::exec(
        txn, conn, state_->sql("delete from {schema}.tenants where name = $1 returning 1"), key);
    if (removed.empty()) throw TenantNotFound(key, tenant_state->options.schema);
    // One NOTICE per dropped object is noise, not news.
    txn.exec("set local client_min_messages = warning");
    txn.exec("drop schema if exists " + tenant_state->quoted_schema + " cascade");
  });
  detail::forget_tenant(*state_, key);
}

}  // namespace rillflow
