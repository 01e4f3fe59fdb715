#include "support/pgbouncer.hpp"

#include "util/process.hpp"

#include <pqxx/pqxx>

#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace rillflow::testing {

namespace {

std::string find_binary() {
  if (const char* env = std::getenv("RILLFLOW_PGBOUNCER"); env != nullptr && *env != '\0')
    return env;
  for (const char* p : {"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  throw std::runtime_error(
      "pgbouncer not found (Debian: apt-get install pgbouncer, or run scripts/setup)");
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  auto text = ss.str();
  if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
  return text;
}

}  // namespace

PgBouncer PgBouncer::start(const std::string& backend_url) {
  return start(backend_url, Options{});
}

PgBouncer PgBouncer::start(const std::string& backend_url, const Options& options) {
  const std::string binary = find_binary();
  std::string host, user, dbname;
  int backend_port = 0;
  {
    pqxx::connection probe(backend_url);
    host = probe.hostname() != nullptr ? probe.hostname() : "";
    user = probe.username() != nullptr ? probe.username() : "postgres";
    dbname = probe.dbname() != nullptr ? probe.dbname() : "postgres";
    backend_port = std::atoi(probe.port());
  }
  PgBouncer b;
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/rillflow-pgbouncer-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("cannot create a directory for pgbouncer: " +
                             std::string(std::strerror(errno)));
  b.dir_ = tmpl;
  // PgBouncer refuses to run as root: then it runs as postgres, like the embedded cluster.
  std::string run_as;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root but there is no user postgres");
    run_as = "postgres";
    if (::chown(b.dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot hand " + b.dir_ + " to postgres");
  }
  b.port_ = util::free_tcp_port();
  const fs::path dir = b.dir_;
  {
    std::ofstream ini(dir / "pgbouncer.ini");
    ini << "[databases]\n"
        << "* = host=" << host << " port=" << backend_port << " user=" << user << "\n"
        << "[pgbouncer]\n"
        << "listen_addr = 127.0.0.1\n"
        << "listen_port = " << b.port_ << "\n"
        << "unix_socket_dir =\n"
        << "auth_type = any\n"
        << "pool_mode = " << options.pool_mode << "\n"
        << "default_pool_size = " << options.pool_size
        << "\n"
        // A short wait for a server connection borrows from the reserve instead of queueing
        // forever behind transactions that wait on each other.
        << "reserve_pool_size = " << options.pool_size << "\n"
        << "reserve_pool_timeout = 1\n"
        << "max_client_conn = 2000\n"
        << "ignore_startup_parameters = extra_float_digits\n"
        << "logfile = " << (dir / "pgbouncer.log").string() << "\n"
        << "pidfile = " << (dir / "pgbouncer.pid").string() << "\n";
  }
  if (!run_as.empty()) {
    const passwd* pw = ::getpwnam(run_as.c_str());
    for (const char* f : {"pgbouncer.ini"})
      if (::chown((dir / f).c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("cannot hand the pgbouncer config to postgres");
  }

  // The watchdog: a shell that runs pgbouncer in the background and waits for EOF on a pipe
  // whose write end only this process holds (close-on-exec, so no child keeps it open).
  std::string run =
      util::shell_quote(binary) + " " + util::shell_quote((dir / "pgbouncer.ini").string());
  if (!run_as.empty()) run = "runuser -u " + run_as + " -- " + run;
  const std::string pidfile = util::shell_quote((dir / "pgbouncer.pid").string());
  const std::string script = run + " & child=$!; read _; kill $(cat " + pidfile +
                             " 2>/dev/null) $child 2>/dev/null; wait $child; rm -rf " +
                             util::shell_quote(b.dir_);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t pid = util::spawn_detached({"/bin/sh", "-c", script}, fds[0]);
  ::close(fds[0]);
  if (pid < 0) {
    ::close(fds[1]);
    throw std::runtime_error("cannot start the pgbouncer watchdog shell");
  }
  b.watchdog_ = pid;
  b.watchdog_fd_ = fds[1];
  b.url_ = "postgresql://" + user + "@127.0.0.1:" + std::to_string(b.port_) + "/" + dbname;

  // Ready when it answers a query (it connects to the server on the first one).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string last_error;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(b.watchdog_, &status, WNOHANG) == b.watchdog_) {
      b.watchdog_ = -1;
      throw std::runtime_error("pgbouncer exited at start: " + read_all(dir / "pgbouncer.log"));
    }
    try {
      pqxx::connection c(b.url_);
      pqxx::nontransaction(c).exec("select 1");
      return b;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
  }
  throw std::runtime_error("pgbouncer did not accept connections within 30 s (" + last_error +
                           "): " + read_all(dir / "pgbouncer.log"));
}

PgBouncer::PgBouncer(PgBouncer&& other) noexcept
    : dir_(std::move(other.dir_)),
      url_(std::move(other.url_)),
      port_(other.port_),
      watchdog_(other.watchdog_),
      watchdog_fd_(other.watchdog_fd_) {
  other.watchdog_ = -1;
  other.watchdog_fd_ = -1;
}

PgBouncer::~PgBouncer() {
  stop();
}

void PgBouncer::stop() {
  if (watchdog_fd_ >= 0) {
    ::close(watchdog_fd_);  // EOF: the watchdog stops pgbouncer and removes its directory
    watchdog_fd_ = -1;
  }
  if (watchdog_ > 0) {
    int status = 0;
    ::waitpid(watchdog_, &status, 0);
    watchdog_ = -1;
  }
}

}  // namespace rillflow::testing
