#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace rillflow {

/// Settings of an embedded cluster.
struct EmbeddedPostgresOptions {
  /// Where the cluster's private directory is created (default: $TMPDIR or /tmp).
  std::filesystem::path parent_dir;
  /// Also listen on 127.0.0.1 at a free TCP port (default: unix socket only, in a private dir).
  bool tcp = false;
  /// fsync and synchronous_commit on (default off: embedded clusters are for development,
  /// tests and demos, and are deleted on exit).
  bool durable = false;
  /// Directory with initdb and pg_ctl; default: $RILLFLOW_PG_BINDIR, `pg_config --bindir`,
  /// then the newest /usr/lib/postgresql/*/bin.
  std::filesystem::path bindir;
  /// When running as root the server runs as this user (PostgreSQL refuses to run as root).
  std::string run_as = "postgres";
};

/// A private PostgreSQL cluster started from the system's binaries: initdb in a fresh
/// directory, pg_ctl start on a private unix socket (and optionally a free TCP port).
///
/// The cluster is stopped and its directory deleted by stop() or the destructor, and also when
/// the owning process dies without either (a watchdog process notices and cleans up); leftovers
/// of crashed runs are removed by the next start. Throws rillflow::Error: kNotInstalled when the
/// server binaries are missing, kInternal with the server log's tail when start fails.
/// Not copyable; movable. stop() is idempotent.
class EmbeddedPostgres {
 public:
  static EmbeddedPostgres start(const EmbeddedPostgresOptions& options = {});

  EmbeddedPostgres(EmbeddedPostgres&&) noexcept;
  EmbeddedPostgres& operator=(EmbeddedPostgres&&) noexcept;
  ~EmbeddedPostgres();

  /// A libpq URL for the cluster's `postgres` database (superuser, no password).
  const std::string& url() const;
  /// The cluster's port (the socket name's number when tcp is off).
  int port() const;
  const std::filesystem::path& directory() const;
  /// Stops the server but keeps its data (for outage drills); resume() starts it again on the
  /// same port and socket.
  void suspend();
  void resume();
  void stop();

  struct Impl;

 private:
  explicit EmbeddedPostgres(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// A database for examples, tools and benchmarks: the URL in an environment variable when it is
/// set, else an embedded cluster that lives as long as this object.
class LocalDatabase {
 public:
  /// Throws what EmbeddedPostgres::start() throws when it has to start one (with `options`,
  /// e.g. durable for a benchmark's fsync-on figures).
  static LocalDatabase from_env(const char* variable = "DATABASE_URL",
                                const EmbeddedPostgresOptions& options = {});
  const std::string& url() const { return url_; }
  bool embedded() const { return embedded_.has_value(); }

 private:
  std::optional<EmbeddedPostgres> embedded_;
  std::string url_;
};

}  // namespace rillflow
