#include <rillflow/error.hpp>
#include <rillflow/schema/schema_manager.hpp>

#include "db/sql.hpp"
#include "schema/migrations.hpp"
#include "schema/schema_sync.hpp"
#include "store_state.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include <unistd.h>

namespace rillflow {

void validate_identifier(const std::string& name, const char* what) {
  bool ok = !name.empty() && name.size() <= 63 && !(name[0] >= '0' && name[0] <= '9') &&
            !name.starts_with("pg_");
  for (const char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (!ok) {
    std::string shown = name.substr(0, 80);
    for (auto& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    }
    throw Error(ErrorCode::kInvalidArgument,
                std::string("invalid ") + what + " '" + shown +
                    "': use 1-63 characters of a-z, 0-9 and _, not starting with a digit or pg_");
  }
}

namespace {

struct Applied {
  std::string name;
  std::string checksum;
};

// Versions recorded in the schema; nullopt-like empty map plus flag when not bootstrapped.
struct DbState {
  bool bootstrapped = false;
  std::map<int, Applied> applied;
};

DbState read_state(pqxx::transaction_base& txn, const detail::StoreState& s) {
  DbState st;
  const auto reg = txn.exec_params("select to_regclass($1) is not null",
                                   s.quoted_schema + ".rillflow_migrations");
  st.bootstrapped = reg[0][0].as<bool>();
  if (!st.bootstrapped) return st;
  for (const auto& row :
       txn.exec(s.sql("select version, name, checksum from {schema}.rillflow_migrations"))) {
    st.applied.emplace(row[0].as<int>(),
                       Applied{row[1].as<std::string>(), row[2].as<std::string>()});
  }
  return st;
}

std::vector<PendingMigration> pending_of(const DbState& st, const detail::StoreState& s) {
  std::vector<PendingMigration> out;
  for (const auto& m : schema::migrations()) {
    if (st.applied.contains(m.version)) continue;
    out.push_back({m.version, std::string(m.name), s.sql(m.sql)});
  }
  return out;
}

// The script sync() runs, and plan_sql() prints: bootstrap when needed, every pending
// migration, and the rows recording them. Only the validated schema name and the library's own
// constants appear in it.
std::string script_of(const DbState& st, const std::vector<PendingMigration>& pending,
                      const detail::StoreState& s) {
  if (pending.empty() && st.bootstrapped) return {};
  std::string out;
  if (!st.bootstrapped) out += s.sql(schema::kBootstrapSql);
  for (const auto& p : pending) {
    const auto& m =
        *std::find_if(schema::migrations().begin(), schema::migrations().end(),
                      [&](const auto& candidate) { return candidate.version == p.version; });
    out += "-- migration " + std::to_string(p.version) + ": " + p.name + "\n";
    out += p.sql;
    out += s.sql("insert into {schema}.rillflow_migrations (version, name, checksum) values (") +
           std::to_string(p.version) + ", '" + std::string(m.name) + "', '" +
           schema::checksum(m.sql) + "');\n";
  }
  return out;
}

// Table -> column -> type, of the tables in `schema` (ordinary and partitioned tables).
using Columns = std::map<std::string, std::map<std::string, std::string>>;

Columns columns_of(pqxx::transaction_base& txn, const std::string& schema) {
  Columns out;
  for (const auto& row :
       txn.exec_params("select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
                       "from pg_attribute a join pg_class c on c.oid = a.attrelid "
                       "join pg_namespace n on n.oid = c.relnamespace "
                       "where n.nspname = $1 and c.relkind in ('r', 'p') and a.attnum > 0 "
                       "and not a.attisdropped",
                       schema)) {
    out[row[0].as<std::string>()][row[1].as<std::string>()] = row[2].as<std::string>();
  }
  return out;
}

// The columns the migrations make, learnt once per process by applying every migration to a
// scratch schema in a transaction that is rolled back (so the list can never disagree with the
// migrations' text).
// A role without CREATE on the database cannot make the scratch schema: then only relations and
// indexes are compared (empty result, retried at the next call).
Columns expected_columns(db::Pool& pool) {
  static std::mutex mutex;
  static std::optional<Columns> cached;
  std::lock_guard lock(mutex);
  if (!cached) {
    try {
      cached = db::with_connection(pool, [](db::Connection& conn) {
        pqxx::work txn(conn.raw());
        const std::string scratch = "rillflow_expected_" + std::to_string(::getpid());
        const auto quoted = db::quote_ident(scratch);
        txn.exec(db::with_schema(schema::kBootstrapSql, quoted));
        for (const auto& m : schema::migrations()) txn.exec(db::with_schema(m.sql, quoted));
        auto cols = columns_of(txn, scratch);
        txn.abort();
        return cols;
      });
    } catch (const ConnectionError&) {
      throw;
    } catch (const Error&) {
      return {};
    }
  }
  return *cached;
}

}  // namespace

int SchemaManager::latest_version() noexcept {
  return schema::migrations().back().version;
}

std::vector<PendingMigration> SchemaManager::plan() const {
  return db::without_transaction(state_->connections(), [&](auto& txn, auto&) {
    return pending_of(read_state(txn, *state_), *state_);
  });
}

std::string SchemaManager::plan_sql() const {
  return db::without_transaction(state_->connections(), [&](auto& txn, auto&) {
    const auto st = read_state(txn, *state_);
    return script_of(st, pending_of(st, *state_), *state_);
  });
}

namespace schema {
std::vector<int> sync_in(pqxx::work& txn, const detail::StoreState& state) {
  // Transaction-scoped: released at commit, safe behind PgBouncer in transaction mode.
  txn.exec_params("select pg_advisory_xact_lock(hashtextextended($1, 0))",
                  "rillflow.schema." + state.options.schema);
  const auto st = read_state(txn, state);
  const auto pending = pending_of(st, state);
  std::vector<int> applied;
  const auto script = script_of(st, pending, state);
  if (!script.empty()) txn.exec(script);
  for (const auto& p : pending) applied.push_back(p.version);
  return applied;
}
}  // namespace schema

std::vector<int> SchemaManager::sync() const {
  return db::in_transaction(state_->connections(),
                            [&](pqxx::work& txn, auto&) { return schema::sync_in(txn, *state_); });
}

SchemaDrift SchemaManager::drift() const {
  const Columns expected_cols = expected_columns(state_->connections());
  return db::without_transaction(state_->connections(), [&](auto& txn, auto&) {
    SchemaDrift drift;
    const auto& schema_name = state_->options.schema;
    const auto st = read_state(txn, *state_);
    if (!st.bootstrapped) {
      drift.problems.push_back("schema '" + schema_name + "' has no Rillflow migrations table; " +
                               std::to_string(schema::migrations().size()) +
                               " migration(s) pending (run rillflow schema-sync)");
      return drift;
    }
    std::map<int, const schema::Migration*> known;
    for (const auto& m : schema::migrations()) known.emplace(m.version, &m);
    for (const auto& [version, applied] : st.applied) {
      if (!known.contains(version)) {
        drift.problems.push_back("migration " + std::to_string(version) + " (" + applied.name +
                                 ") is applied but unknown to this library (a newer Rillflow "
                                 "migrated this schema)");
      }
    }
    for (const auto& [version, m] : known) {
      const auto it = st.applied.find(version);
      if (it == st.applied.end()) {
        drift.problems.push_back("migration " + std::to_string(version) + " (" +
                                 std::string(m->name) + ") is pending (run rillflow schema-sync)");
        continue;
      }
      const auto expected = schema::checksum(m->sql);
      if (it->second.checksum != expected) {
        drift.problems.push_back("migration " + std::to_string(version) + " (" +
                                 std::string(m->name) + ") was applied from different text " +
                                 "(checksum " + it->second.checksum + ", library " + expected +
                                 ")");
      }
      for (const auto relation : m->relations) {
        const auto r = txn.exec_params("select to_regclass($1) is not null",
                                       state_->quoted_schema + "." + std::string(relation));
        if (!r[0][0].template as<bool>()) {
          drift.problems.push_back("missing relation " + schema_name + "." + std::string(relation) +
                                   " (created by migration " + std::to_string(version) + ")");
        }
      }
    }
    // Dropped or retyped columns of the tables the migrations make (missing tables are reported
    // above).
    const auto actual = columns_of(txn, schema_name);
    for (const auto& [table, columns] : expected_cols) {
      const auto have = actual.find(table);
      if (have == actual.end()) continue;
      for (const auto& [column, type] : columns) {
        const auto it = have->second.find(column);
        if (it == have->second.end()) {
          drift.problems.push_back("missing column " + schema_name + "." + table + "." + column +
                                   " (" + type + ")");
        } else if (it->second != type) {
          drift.problems.push_back("column " + schema_name + "." + table + "." + column + " is " +
                                   it->second + ", the migrations make it " + type);
        }
      }
    }
    // Committed events whose transaction ids lie in this cluster's future come from another
    // cluster (a logical dump restored without carrying the xid counter over): the feed would
    // stall on them. docs/ordering.md has the procedure.
    if (st.applied.contains(1)) {
      const auto future =
          txn.exec(state_->sql("select exists (select 1 from {schema}.events where tx_id >= "
                               "pg_snapshot_xmax(pg_current_snapshot()))"));
      if (future[0][0].template as<bool>()) {
        drift.problems.push_back(
            "events in schema '" + schema_name +
            "' carry transaction ids from another cluster (restored from a dump?); the feed "
            "cannot deliver them until the restore procedure in docs/ordering.md is followed");
      }
    }
    return drift;
  });
}

}  // namespace rillflow
