#include "embedded/pg_tools.hpp"

#include "util/process.hpp"

#include <rillflow/error.hpp>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <utility>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace rillflow::embedded {

fs::path find_pg_tool(const std::string& tool) {
  std::vector<fs::path> tried;
  auto found = [&](const fs::path& dir) {
    tried.push_back(dir);
    std::error_code ec;
    return !dir.empty() && fs::exists(dir / tool, ec) && ::access((dir / tool).c_str(), X_OK) == 0;
  };
  if (const char* env = std::getenv("RILLFLOW_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (found(env)) return fs::path(env) / tool;
  }
  const auto cfg = util::run_process({"pg_config", "--bindir"});
  if (cfg.exit_code == 0) {
    std::string out = cfg.output;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (found(out)) return fs::path(out) / tool;
  }
  std::vector<std::pair<int, fs::path>> versions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const int major = std::atoi(entry.path().filename().string().c_str());
    if (major > 0) versions.emplace_back(major, entry.path() / "bin");
  }
  std::sort(versions.rbegin(), versions.rend());
  for (const auto& [major, dir] : versions) {
    if (found(dir)) return dir / tool;
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (found(dir)) return fs::path(dir) / tool;
    }
  }
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p.string();
  throw Error(ErrorCode::kNotInstalled,
              "PostgreSQL's " + tool + " not found (looked in " + where +
                  "); install the PostgreSQL client (Debian: apt-get install postgresql-client) "
                  "or set RILLFLOW_PG_BINDIR");
}

}  // namespace rillflow::embedded
