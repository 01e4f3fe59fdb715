#pragma once
// Document statements shared by DocumentStore and DocumentSession (private to rillflow::core).
// Each runs inside the caller's transaction, so a session applies many in one.

#include "db/pool.hpp"
#include "store_state.hpp"

#include <rillflow/documents/document_store.hpp>

#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rillflow::docs {

/// Throws Error (kInvalidArgument) for an empty or over-long collection name.
void validate_collection(std::string_view collection);

/// Writes a whole document with the expectation rules of DocumentStore::put; returns the new
/// version. Throws DocVersionConflict / DocNotFound.
std::int64_t put_in(pqxx::transaction_base& txn, db::Connection& conn,
                    const detail::StoreState& state, std::string_view collection, const Uuid& id,
                    const Json& doc, std::optional<std::int64_t> expected);

/// Deletes the row; false when there was none. With an expectation, throws DocVersionConflict
/// / DocNotFound instead of returning false.
bool remove_in(pqxx::transaction_base& txn, db::Connection& conn, const detail::StoreState& state,
               std::string_view collection, const Uuid& id, std::optional<std::int64_t> expected);

/// The row (live or soft-deleted), optionally locked FOR UPDATE.
std::optional<DocumentStore::Row> select_in(pqxx::transaction_base& txn, db::Connection& conn,
                                            const detail::StoreState& state,
                                            std::string_view collection, const Uuid& id,
                                            bool for_update);

}  // namespace rillflow::docs
