#pragma once
// Running the real rillflowd for end-to-end tests: spawn with a config and environment, read its
// log, talk HTTP to it, signal it, wait for it.

#include <sys/types.h>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rillflow::e2e {

struct HttpReply {
  int status = 0;  ///< 0 when the connection failed
  std::string body;
};

/// GET http://127.0.0.1:port/path (HTTP/1.0, no keep-alive).
HttpReply http_get(int port, const std::string& path);

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

class DaemonProcess {
 public:
  /// Starts `binary` (rillflowd) --config `config_path` with extra environment entries ("K=V"),
  /// logging to a file. Does not wait for readiness.
  DaemonProcess(const std::string& binary, const std::string& config_path,
                std::vector<std::string> env = {});
  /// Starts `args` (args[0] is the binary's path) the same way, e.g. `rillflow projections
  /// run-loop ...`, which logs the same "serving HTTP on" line.
  DaemonProcess(std::vector<std::string> args, std::vector<std::string> env);
  ~DaemonProcess();  // SIGKILL if still running
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// The HTTP port it logged (waits up to 20 s); -1 if it never said.
  int port();
  std::string log() const;
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void signal(int sig) const;
  /// Waits for exit; returns the exit code, -1 for a signal, -2 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  bool running();

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int port_ = -1;
  int exit_code_ = -3;
};

/// Writes `text` to a new temporary file and returns its path.
std::string write_temp(const std::string& name, const std::string& text);

}  // namespace rillflow::e2e
