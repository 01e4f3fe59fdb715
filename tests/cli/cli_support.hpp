#pragma once
// What the CLI tests share: the rillflow binary run against a test schema, as a user runs it.

#include "support/test_db.hpp"
#include "util/process.hpp"

#include <string>
#include <vector>

namespace rillflow::testing {

/// `rillflow --database-url <db> --schema <db's schema> args...`
inline util::ProcessResult run_cli(const TestSchema& db, std::vector<std::string> args) {
  std::vector<std::string> argv{RILLFLOW_CLI_PATH, "--database-url", db.url(), "--schema",
                                db.name()};
  argv.insert(argv.end(), args.begin(), args.end());
  return util::run_process(argv);
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace rillflow::testing
