#pragma once
// Running helper programs (initdb, pg_ctl) without a shell. Private to rillflow::core.

#include <sys/types.h>
#include <string>
#include <vector>

namespace rillflow::util {

struct ProcessResult {
  int exit_code = -1;  ///< -1 when it could not be started or died of a signal
  std::string output;  ///< stdout and stderr, interleaved
};

/// Runs argv[0] (searched in PATH) to completion and captures its output.
ProcessResult run_process(const std::vector<std::string>& argv);
/// The same with `extra_env` ("NAME=value" entries) added to (or replacing in) the environment.
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::vector<std::string>& extra_env);

/// Starts argv in a new session with stdin from `stdin_fd` and output to /dev/null.
/// Returns the pid, or -1.
pid_t spawn_detached(const std::vector<std::string>& argv, int stdin_fd);

/// True when a process with this pid exists.
bool process_alive(pid_t pid);

/// A TCP port on 127.0.0.1 that is free now (bound and released). Throws rillflow::Error.
int free_tcp_port();

/// `s` quoted for /bin/sh ('...' with embedded quotes escaped).
std::string shell_quote(const std::string& s);

}  // namespace rillflow::util
