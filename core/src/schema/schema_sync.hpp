#pragma once
// Applying the migrations inside a caller's transaction (private to rillflow::core): what
// SchemaManager::sync() runs, and what provisioning a tenant schema runs next to its registry row.

#include "store_state.hpp"

#include <pqxx/pqxx>

#include <vector>

namespace rillflow::schema {

/// Takes the schema's transaction-scoped advisory lock, then applies every pending migration to
/// `state`'s schema (bootstrapping it when missing). Returns the versions applied.
std::vector<int> sync_in(pqxx::work& txn, const detail::StoreState& state);

}  // namespace rillflow::schema
