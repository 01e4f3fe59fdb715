#include <rillflow/documents/document_store.hpp>
#include <rillflow/error.hpp>

#include "db/sql.hpp"
#include "documents/document_path.hpp"
#include "documents/document_sql.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

namespace rillflow {
namespace docs {

namespace {

constexpr const char* kSelect =
    "select doc::text, version, deleted_at is not null from {schema}.docs "
    "where collection = $1 and id = $2::uuid";
constexpr const char* kUpsert =
    "insert into {schema}.docs as d (collection, id, doc, version) "
    "values ($1, $2::uuid, $3::jsonb, 1) "
    "on conflict (collection, id) do update set doc = excluded.doc, version = d.version + 1, "
    "updated_at = now(), deleted_at = null returning version";
constexpr const char* kInsertNew =
    "insert into {schema}.docs (collection, id, doc, version) values ($1, $2::uuid, $3::jsonb, 1) "
    "on conflict (collection, id) do nothing returning version";
constexpr const char* kReplace =
    "update {schema}.docs set doc = $3::jsonb, version = version + 1, updated_at = now(), "
    "deleted_at = null where collection = $1 and id = $2::uuid and version = $4 returning version";
constexpr const char* kDelete =
    "delete from {schema}.docs where collection = $1 and id = $2::uuid "
    "and ($3::bigint is null or version = $3::bigint) returning version";

// Why a conditional write touched no row: the document is missing (DocNotFound, or nothing
// to report when the write expected it to be absent) or at another version.
[[noreturn]] void throw_rejected(pqxx::transaction_base& txn, db::Connection& conn,
                                 const detail::StoreState& state, std::string_view collection,
                                 const Uuid& id, std::int64_t expected) {
  const auto row = select_in(txn, conn, state, collection, id, false);
  if (!row && expected > 0) throw DocNotFound(std::string(collection), to_string(id));
  throw DocVersionConflict(std::string(collection), to_string(id), expected,
                           row ? row->version : 0);
}

}  // namespace

void validate_collection(std::string_view collection) {
  if (collection.empty() || collection.size() > 200) {
    throw Error(ErrorCode::kInvalidArgument, "a collection name must be 1 to 200 characters long");
  }
  if (collection.find('\0') != std::string_view::npos) {
    throw Error(ErrorCode::kInvalidArgument, "a collection name must not contain NUL");
  }
}

std::optional<DocumentStore::Row> select_in(pqxx::transaction_base& txn, db::Connection& conn,
                                            const detail::StoreState& state,
                                            std::string_view collection, const Uuid& id,
                                            bool for_update) {
  const std::string sql = state.sql(kSelect) + (for_update ? " for update" : "");
  const auto r = db::exec(txn, conn, sql, std::string(collection), to_string(id));
  if (r.empty()) return std::nullopt;
  return DocumentStore::Row{boost::json::parse(std::string_view(r[0][0].c_str(), r[0][0].size())),
                            r[0][1].as<std::int64_t>(), r[0][2].as<bool>()};
}

std::int64_t put_in(pqxx::transaction_base& txn, db::Connection& conn,
                    const detail::StoreState& state, std::string_view collection, const Uuid& id,
                    const Json& doc, std::optional<std::int64_t> expected) {
  validate_collection(collection);
  const std::string body = boost::json::serialize(doc);
  const std::string coll(collection);
  const std::string key = to_string(id);
  pqxx::result r;
  if (!expected) {
    r = db::exec(txn, conn, state.sql(kUpsert), coll, key, body);
  } else if (*expected == 0) {
    r = db::exec(txn, conn, state.sql(kInsertNew), coll, key, body);
  } else {
    r = db::exec(txn, conn, state.sql(kReplace), coll, key, body, *expected);
  }
  if (r.empty()) throw_rejected(txn, conn, state, collection, id, *expected);
  return r[0][0].as<std::int64_t>();
}

bool remove_in(pqxx::transaction_base& txn, db::Connection& conn, const detail::StoreState& state,
               std::string_view collection, const Uuid& id, std::optional<std::int64_t> expected) {
  validate_collection(collection);
  const auto r =
      db::exec(txn, conn, state.sql(kDelete), std::string(collection), to_string(id), expected);
  if (r.empty() && expected) throw_rejected(txn, conn, state, collection, id, *expected);
  return !r.empty();
}

}  // namespace docs

std::int64_t DocumentStore::put(std::string_view collection, const Uuid& id, const Json& doc,
                                std::optional<std::int64_t> expected) const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return docs::put_in(txn, conn, *state_, collection, id, doc, expected);
  });
}

std::optional<DocumentStore::Row> DocumentStore::get_any(std::string_view collection,
                                                         const Uuid& id) const {
  docs::validate_collection(collection);
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return docs::select_in(txn, conn, *state_, collection, id, false);
  });
}

std::optional<Versioned<Json>> DocumentStore::get(std::string_view collection,
                                                  const Uuid& id) const {
  auto row = get_any(collection, id);
  if (!row || row->deleted) return std::nullopt;
  return Versioned<Json>{std::move(row->doc), row->version};
}

std::int64_t DocumentStore::update(std::string_view collection, const Uuid& id,
                                   std::int64_t expected,
                                   const std::function<void(Json&)>& fn) const {
  docs::validate_collection(collection);
  return db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
    auto row = docs::select_in(txn, conn, *state_, collection, id, /*for_update=*/true);
    if (!row || row->deleted) throw DocNotFound(std::string(collection), to_string(id));
    if (row->version != expected) {
      throw DocVersionConflict(std::string(collection), to_string(id), expected, row->version);
    }
    fn(row->doc);
    return docs::put_in(txn, conn, *state_, collection, id, row->doc, row->version);
  });
}

std::int64_t DocumentStore::patch_fields(std::string_view collection, const Uuid& id,
                                         std::optional<std::int64_t> expected,
                                         std::vector<FieldUpdate> fields) const {
  docs::validate_collection(collection);
  for (const auto& f : fields) docs::parse_path(f.path);  // reject bad paths before any I/O
  return db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
    auto row = docs::select_in(txn, conn, *state_, collection, id, /*for_update=*/true);
    if (!row || row->deleted) throw DocNotFound(std::string(collection), to_string(id));
    if (expected && row->version != *expected) {
      throw DocVersionConflict(std::string(collection), to_string(id), *expected, row->version);
    }
    for (auto& f : fields) docs::set_path(row->doc, f.path, std::move(f.value));
    return docs::put_in(txn, conn, *state_, collection, id, row->doc, row->version);
  });
}

bool DocumentStore::remove(std::string_view collection, const Uuid& id,
                           std::optional<std::int64_t> expected) const {
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    return docs::remove_in(txn, conn, *state_, collection, id, expected);
  });
}

namespace {

// Flips deleted_at (soft delete when `deleting`, restore otherwise). A document already in the
// wanted state keeps its version.
std::int64_t set_deleted(const detail::StoreState& state, std::string_view collection,
                         const Uuid& id, bool deleting) {
  docs::validate_collection(collection);
  const std::string sql = state.sql(
      deleting ? "update {schema}.docs set deleted_at = now(), version = version + 1, "
                 "updated_at = now() where collection = $1 and id = $2::uuid and deleted_at is "
                 "null returning version"
               : "update {schema}.docs set deleted_at = null, version = version + 1, "
                 "updated_at = now() where collection = $1 and id = $2::uuid and deleted_at is "
                 "not null returning version");
  return db::without_transaction(state.connections(), [&](auto& txn, db::Connection& conn) {
    const auto r = db::exec(txn, conn, sql, std::string(collection), to_string(id));
    if (!r.empty()) return r[0][0].template as<std::int64_t>();
    const auto row = docs::select_in(txn, conn, state, collection, id, false);
    if (!row) throw DocNotFound(std::string(collection), to_string(id));
    return row->version;
  });
}

}  // namespace

std::int64_t DocumentStore::soft_delete(std::string_view collection, const Uuid& id) const {
  return set_deleted(*state_, collection, id, true);
}

std::int64_t DocumentStore::restore(std::string_view collection, const Uuid& id) const {
  return set_deleted(*state_, collection, id, false);
}

std::vector<std::int64_t> DocumentStore::put_many(
    std::string_view collection, const std::vector<std::pair<Uuid, Json>>& docs) const {
  docs::validate_collection(collection);
  if (docs.empty()) return {};
  std::set<Uuid> seen;
  boost::json::array batch;
  batch.reserve(docs.size());
  for (const auto& [id, doc] : docs) {
    if (!seen.insert(id).second) {
      throw Error(ErrorCode::kInvalidArgument,
                  "put_many got document " + to_string(id) + " twice; ids must be distinct");
    }
    batch.push_back(boost::json::array{Json(to_string(id)), doc});
  }
  const std::string sql = state_->sql(
      "insert into {schema}.docs as d (collection, id, doc, version) "
      "select $1, (x.e->>0)::uuid, x.e->1, 1 from jsonb_array_elements($2::jsonb) "
      "with ordinality as x(e, ord) order by x.ord "
      "on conflict (collection, id) do update set doc = excluded.doc, "
      "version = d.version + 1, updated_at = now(), deleted_at = null "
      "returning id::text, version");
  const auto versions =
      db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
        std::unordered_map<std::string, std::int64_t> out;
        for (const auto& row :
             db::exec(txn, conn, sql, std::string(collection), boost::json::serialize(batch))) {
          out.emplace(row[0].template as<std::string>(), row[1].template as<std::int64_t>());
        }
        return out;
      });
  std::vector<std::int64_t> out;
  out.reserve(docs.size());
  for (const auto& [id, doc] : docs) out.push_back(versions.at(to_string(id)));
  return out;
}

std::vector<std::string> DocumentStore::collections_of(const Uuid& id) const {
  const std::string sql =
      state_->sql("select collection from {schema}.docs where id = $1::uuid order by 1");
  return db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
    std::vector<std::string> out;
    for (const auto& row : db::exec(txn, conn, sql, to_string(id))) {
      out.push_back(row[0].template as<std::string>());
    }
    return out;
  });
}

}  // namespace rillflow
