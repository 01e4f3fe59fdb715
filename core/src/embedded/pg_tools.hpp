#pragma once
// Finding PostgreSQL's client programs (pg_dump, pg_restore) the way EmbeddedPostgres finds
// its server binaries. Private to rillflow::core.

#include <filesystem>
#include <string>

namespace rillflow::embedded {

/// The path of `tool`: from $RILLFLOW_PG_BINDIR, `pg_config --bindir`, the newest
/// /usr/lib/postgresql/*/bin, then PATH. Throws Error (kNotInstalled) naming where it looked.
std::filesystem::path find_pg_tool(const std::string& tool);

}  // namespace rillflow::embedded
