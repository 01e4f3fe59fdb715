#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <filesystem>
#include <fstream>

using namespace rillflow;
namespace fs = std::filesystem;

namespace {
fs::path scratch_dir() {
  const auto dir = fs::temp_directory_path() / ("rf-embedded-test-" + testing::random_suffix());
  fs::create_directories(dir);
  if (geteuid() == 0) fs::permissions(dir, fs::perms::all);  // the server user must traverse it
  return dir;
}
}  // namespace

TEST_CASE("embedded_postgres_starts_serves_and_cleans_up_on_stop") {
  const auto parent = scratch_dir();
  fs::path dir;
  {
    auto pg = EmbeddedPostgres::start({.parent_dir = parent});
    dir = pg.directory();
    CHECK(fs::exists(dir));
    auto store = Store::builder(pg.url()).schema("emb").build();
    store.schema().sync();
    store.events().append_stream(new_uuid(), Expected::any(), {Event("A", 1)});
    CHECK(store.events().head() >= 1);
  }
  CHECK_FALSE(fs::exists(dir));
  fs::remove_all(parent);
}

TEST_CASE("embedded_postgres_with_tcp_picks_a_free_port_and_two_run_side_by_side") {
  auto a = EmbeddedPostgres::start({.tcp = true});
  auto b = EmbeddedPostgres::start({.tcp = true});
  CHECK(a.port() != b.port());
  CHECK(a.url().find("127.0.0.1:" + std::to_string(a.port())) != std::string::npos);
  pqxx::connection ca(a.url());
  pqxx::connection cb(b.url());
  CHECK(pqxx::nontransaction(ca).exec("select 1")[0][0].as<int>() == 1);
  CHECK(pqxx::nontransaction(cb).exec("select 1")[0][0].as<int>() == 1);
}

TEST_CASE("a_crashed_owner_is_cleaned_up_by_its_watchdog_and_stale_dirs_by_the_next_start") {
  const auto parent = scratch_dir();
  // A child process starts a cluster and dies without cleaning up (like kill -9).
  const pid_t child = fork();
  if (child == 0) {
    try {
      auto pg = EmbeddedPostgres::start({.parent_dir = parent});
      std::ofstream(parent / "url") << pg.url();
      std::ofstream(parent / "ready") << "1";
      pause();
    } catch (...) {
    }
    _exit(1);
  }
  while (!fs::exists(parent / "ready")) {
    int status = 0;
    REQUIRE(waitpid(child, &status, WNOHANG) == 0);  // the child must not have failed
    usleep(20000);
  }
  std::string url;
  std::ifstream(parent / "url") >> url;
  { pqxx::connection alive(url); }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  // The watchdog stops the server and removes the directory.
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = true;
    for (const auto& e : fs::directory_iterator(parent)) {
      if (e.path().filename().string().starts_with("rillflow-pg-")) gone = false;
    }
    if (!gone) usleep(20000);
  }
  CHECK(gone);
  CHECK_THROWS(pqxx::connection(url));

  // A stale directory (its owner long dead, a leftover postmaster.pid) does not break a start.
  const auto stale = parent / "rillflow-pg-stale1";
  fs::create_directories(stale / "data");
  std::ofstream(stale / "owner.pid") << 999999999;
  std::ofstream(stale / "data" / "postmaster.pid") << "999999998\n";
  auto pg = EmbeddedPostgres::start({.parent_dir = parent});
  CHECK_FALSE(fs::exists(stale));
  pg.stop();
  fs::remove_all(parent);
}

TEST_CASE("embedded_postgres_reports_missing_binaries_clearly") {
  try {
    EmbeddedPostgres::start({.bindir = "/nonexistent/pg/bin"});
    FAIL("started without binaries");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kNotInstalled);
    const std::string msg = e.what();
    CHECK(msg.find("/nonexistent/pg/bin") != std::string::npos);
    CHECK(msg.find("apt-get install postgresql") != std::string::npos);
  }
}
