#include <rillflow/embedded/embedded_postgres.hpp>
#include <rillflow/error.hpp>

#include "db/url_encode.hpp"
#include "util/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace rillflow {

namespace {
std::string log_tail(const fs::path& log);
}  // namespace

struct EmbeddedPostgres::Impl {
  fs::path bindir;
  fs::path dir;        // private: data/, sock/, server.log, owner.pid
  std::string run_as;  // empty when not root
  std::string url;
  int port = 0;
  pid_t watchdog = -1;
  int watchdog_fd = -1;  // write end; closing it (or dying) lets the watchdog clean up
  bool running = false;
  std::string server_opts;

  fs::path data() const { return dir / "data"; }
  fs::path sock() const { return dir / "sock"; }
  fs::path log() const { return dir / "server.log"; }

  std::vector<std::string> as_user(std::vector<std::string> argv) const {
    if (run_as.empty()) return argv;
    std::vector<std::string> out{"runuser", "-u", run_as, "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }
  std::string pg(const char* tool) const { return (bindir / tool).string(); }
  void shutdown();
  void start_server() {
    const auto started =
        util::run_process(as_user({pg("pg_ctl"), "-D", data().string(), "-l", log().string(), "-w",
                                   "-t", "60", "-o", server_opts, "start"}));
    if (started.exit_code != 0) {
      throw Error(ErrorCode::kInternal, "PostgreSQL did not start (" + started.output +
                                            "); server log:\n" + log_tail(log()));
    }
    running = true;
  }
  void stop_server() {
    if (!running) return;
    util::run_process(as_user({pg("pg_ctl"), "-D", data().string(), "-m", "fast", "-w", "stop"}));
    running = false;
  }
};

namespace {

std::string log_tail(const fs::path& log) {
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  auto text = ss.str();
  if (text.size() > 1500) text = "..." + text.substr(text.size() - 1500);
  return text;
}

bool has_server(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "initdb", ec) && fs::exists(dir / "pg_ctl", ec);
}

fs::path find_bindir(const fs::path& configured) {
  std::vector<fs::path> tried;
  auto accept = [&](const fs::path& p) {
    tried.push_back(p);
    return has_server(p);
  };
  if (!configured.empty()) {
    if (accept(configured)) return configured;
  } else {
    if (const char* env = std::getenv("RILLFLOW_PG_BINDIR"); env != nullptr && *env != '\0') {
      if (accept(env)) return env;
    }
    const auto cfg = util::run_process({"pg_config", "--bindir"});
    if (cfg.exit_code == 0) {
      std::string out = cfg.output;
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
      if (accept(out)) return out;
    }
    std::vector<std::pair<int, fs::path>> versions;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const auto name = entry.path().filename().string();
      const int major = std::atoi(name.c_str());
      if (major > 0) versions.emplace_back(major, entry.path() / "bin");
    }
    std::sort(versions.rbegin(), versions.rend());
    for (const auto& [major, path] : versions) {
      if (accept(path)) return path;
    }
  }
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p.string();
  throw Error(ErrorCode::kNotInstalled,
              "PostgreSQL server binaries (initdb, pg_ctl) not found" +
                  (where.empty() ? std::string() : " (looked in " + where + ")") +
                  "; install them (Debian: apt-get install postgresql) or set RILLFLOW_PG_BINDIR");
}

// Directories of runs whose owner died (crash, kill -9) are stopped and removed.
void remove_stale(const fs::path& parent, const std::string& run_as, const fs::path& bindir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const auto name = entry.path().filename().string();
    if (!name.starts_with("rillflow-pg-")) continue;
    std::ifstream in(entry.path() / "owner.pid");
    pid_t owner = 0;
    if (!(in >> owner) || util::process_alive(owner)) continue;
    if (fs::exists(entry.path() / "data" / "postmaster.pid", ec)) {
      std::vector<std::string> stop{(bindir / "pg_ctl").string(),
                                    "-D",
                                    (entry.path() / "data").string(),
                                    "-m",
                                    "immediate",
                                    "stop"};
      if (!run_as.empty()) stop.insert(stop.begin(), {"runuser", "-u", run_as, "--"});
      util::run_process(stop);
    }
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

EmbeddedPostgres EmbeddedPostgres::start(const EmbeddedPostgresOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->bindir = find_bindir(options.bindir);

  uid_t uid = 0;
  gid_t gid = 0;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam(options.run_as.c_str());
    if (pw == nullptr) {
      throw Error(ErrorCode::kNotInstalled,
                  "running as root, but user '" + options.run_as +
                      "' (who would run the embedded PostgreSQL server) does not exist; "
                      "install the postgresql package or set EmbeddedPostgresOptions::run_as");
    }
    impl->run_as = options.run_as;
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }

  fs::path parent = options.parent_dir;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  remove_stale(parent, impl->run_as, impl->bindir);

  std::string tmpl = (parent / "rillflow-pg-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw Error(ErrorCode::kInternal,
                "cannot create a directory in " + parent.string() + ": " + std::strerror(errno));
  }
  impl->dir = tmpl;
  { std::ofstream(impl->dir / "owner.pid") << ::getpid() << '\n'; }
  fs::create_directory(impl->sock());
  if (!impl->run_as.empty()) {
    for (const auto& p : {impl->dir, impl->sock()}) {
      if (::chown(p.c_str(), uid, gid) != 0) {
        fs::remove_all(impl->dir);
        throw Error(ErrorCode::kInternal, "cannot hand " + p.string() + " to " + impl->run_as);
      }
    }
  }

  // From here on the watchdog owns cleanup if this process dies.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    std::string stop = util::shell_quote(impl->pg("pg_ctl")) + " -D " +
                       util::shell_quote(impl->data().string()) + " -m immediate stop";
    if (!impl->run_as.empty())
      stop = "runuser -u " + util::shell_quote(impl->run_as) + " -- " + stop;
    const std::string script =
        "read _; " + stop + "; rm -rf " + util::shell_quote(impl->dir.string());
    impl->watchdog = util::spawn_detached({"/bin/sh", "-c", script}, fds[0]);
    ::close(fds[0]);
    impl->watchdog_fd = fds[1];
  }

  EmbeddedPostgres pg(std::move(impl));
  Impl& s = *pg.impl_;
  const auto initdb =
      util::run_process(s.as_user({s.pg("initdb"), "-D", s.data().string(), "-U", "postgres",
                                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"}));
  if (initdb.exit_code != 0) {
    throw Error(ErrorCode::kInternal,
                "initdb failed in " + s.data().string() + ":\n" + initdb.output);
  }
  s.port = options.tcp ? util::free_tcp_port() : 5432;
  std::string server_opts = "-p " + std::to_string(s.port) + " -k " +
                            util::shell_quote(s.sock().string()) +
                            " -c listen_addresses=" + (options.tcp ? "127.0.0.1" : "''") +
                            " -c max_connections=200 -c unix_socket_permissions=0700";
  // Durable: said explicitly, whatever the installation's postgresql.conf template says.
  server_opts += options.durable
                     ? " -c fsync=on -c synchronous_commit=on -c full_page_writes=on"
                     : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  s.server_opts = server_opts;
  s.start_server();
  if (options.tcp) {
    s.url = "postgresql://postgres@127.0.0.1:" + std::to_string(s.port) + "/postgres";
  } else {
    s.url = "postgresql://postgres@/postgres?host=" + db::percent_encode(s.sock().string()) +
            "&port=" + std::to_string(s.port);
  }
  return pg;
}

void EmbeddedPostgres::Impl::shutdown() {
  stop_server();
  std::error_code ec;
  if (!dir.empty()) fs::remove_all(dir, ec);
  if (watchdog_fd >= 0) {
    ::close(watchdog_fd);
    watchdog_fd = -1;
  }
  if (watchdog > 0) {
    int status = 0;
    ::waitpid(watchdog, &status, 0);
    watchdog = -1;
  }
}

EmbeddedPostgres::EmbeddedPostgres(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EmbeddedPostgres::EmbeddedPostgres(EmbeddedPostgres&&) noexcept = default;
EmbeddedPostgres& EmbeddedPostgres::operator=(EmbeddedPostgres&& other) noexcept {
  if (this != &other) {
    stop();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
EmbeddedPostgres::~EmbeddedPostgres() {
  stop();
}

const std::string& EmbeddedPostgres::url() const {
  return impl_->url;
}
int EmbeddedPostgres::port() const {
  return impl_->port;
}
const fs::path& EmbeddedPostgres::directory() const {
  return impl_->dir;
}

void EmbeddedPostgres::suspend() {
  impl_->stop_server();
}
void EmbeddedPostgres::resume() {
  impl_->start_server();
}

void EmbeddedPostgres::stop() {
  if (impl_) impl_->shutdown();
}

LocalDatabase LocalDatabase::from_env(const char* variable,
                                      const EmbeddedPostgresOptions& options) {
  LocalDatabase db;
  if (const char* env = std::getenv(variable); env != nullptr && *env != '\0') {
    db.url_ = env;
  } else {
    db.embedded_ = EmbeddedPostgres::start(options);
    db.url_ = db.embedded_->url();
  }
  return db;
}

}  // namespace rillflow
