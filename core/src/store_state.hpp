#pragma once
// What every copy of a Store shares.

#include "db/pool.hpp"

#include <rillflow/store.hpp>

#include <memory>
#include <string>

namespace rillflow::detail {

struct StoreState {
  StoreOptions options;
  std::string quoted_schema;  ///< "schema", ready to paste (validated, quoted)
  std::unique_ptr<db::Pool> pool;

  db::Pool& connections() const { return *pool; }
  /// `sql` with {schema} replaced by the quoted schema.
  std::string sql(std::string_view text) const;
};

}  // namespace rillflow::detail
