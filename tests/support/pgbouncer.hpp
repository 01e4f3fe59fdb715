#pragma once
// A private PgBouncer for tests: Debian's pgbouncer binary in pool_mode = transaction, on a free
// 127.0.0.1 port, in front of a PostgreSQL the harness already runs. Like the embedded cluster it
// is a child of a watchdog process that stops it and removes its directory when this process
// ends, even by kill -9 (never a system service).

#include <sys/types.h>
#include <string>

namespace rillflow::testing {

class PgBouncer {
 public:
  struct Options {
    std::string pool_mode = "transaction";
    /// Server connections per database/user pair; fewer than a store's pool so that client
    /// connections really share server sessions.
    int pool_size = 10;
  };
  /// Starts PgBouncer in front of the server `backend_url` points at (its host or socket
  /// directory, port and user) and waits until it accepts connections. Throws std::runtime_error
  /// with PgBouncer's log when it does not start, or when the binary is missing (scripts/setup
  /// installs it).
  static PgBouncer start(const std::string& backend_url);
  static PgBouncer start(const std::string& backend_url, const Options& options);

  PgBouncer(PgBouncer&& other) noexcept;
  PgBouncer& operator=(PgBouncer&&) = delete;
  ~PgBouncer();

  /// postgresql://user@127.0.0.1:port/dbname through the pooler.
  const std::string& url() const { return url_; }
  int port() const { return port_; }

 private:
  PgBouncer() = default;
  void stop();
  std::string dir_, url_;
  int port_ = 0;
  pid_t watchdog_ = -1;
  int watchdog_fd_ = -1;
};

}  // namespace rillflow::testing
