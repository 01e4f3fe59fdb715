// rillflowd never shows a database password (log, /status), and with logging.format: json every
// line it writes is JSON, libpq's own messages included.
#include "db/url_encode.hpp"
#include "support/daemon_process.hpp"
#include "support/test_db.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <sstream>

using namespace rillflow;
using rillflow::db::percent_encode;
using namespace rillflow::e2e;
using rillflow::testing::TestSchema;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("rillflowd_never_shows_a_database_password_in_its_log_or_status") {
  const std::string password = "Pw@se/cr:et?#%' x";
  const std::string config =
      write_temp("secret.yaml",
                 "database: {url_env: RF_SECRET_URL, require_url: true}\nschema: secret\n"
                 "http: {bind: 127.0.0.1, port: 0}\ndaemon: {poll_interval_ms: 200}\n");
  for (const std::string& url :
       {"postgresql://app:" + password + "@127.0.0.1:1/x?connect_timeout=1",
        "postgresql://app:" + percent_encode(password) + "@127.0.0.1:1/x?connect_timeout=1",
        std::string(
            "host=127.0.0.1 port=1 connect_timeout=1 user=app password='Pw@se/cr:et?#%\\' x'")}) {
    CAPTURE(url);
    DaemonProcess d(RILLFLOWD_PATH, config, {"RF_SECRET_URL=" + url});
    const int port = d.port();
    REQUIRE(port > 0);
    std::string status;
    CHECK(eventually(
        [&] {
          status = http_get(port, "/status").body;
          return contains(status, "\"reachable\":false") && !contains(status, "\"error\":\"\"");
        },
        20s));
    const auto ready = http_get(port, "/health/ready").body;
    CHECK(eventually([&] { return contains(d.log(), "database not reachable yet"); }, 20s));
    for (const auto& text : {status, ready, d.log()}) {
      CHECK_FALSE(contains(text, password));
      CHECK_FALSE(contains(text, percent_encode(password)));
      CHECK_FALSE(contains(text, "se/cr"));
      CHECK_FALSE(contains(text, "cr:et"));
    }
    d.signal(SIGTERM);
    CHECK(d.wait_exit(15s) == 0);
  }
}

TEST_CASE("with_json_logging_every_line_is_json_even_libpq_messages") {
  TestSchema db;
  const std::string config =
      write_temp("jsonlog.yaml",
                 "database: {url_env: RF_E2E_DB_URL, require_url: true}\nschema: " + db.name() +
                     "\nhttp: {bind: 127.0.0.1, port: 0}\n"
                     "logging: {format: json}\ndaemon: {poll_interval_ms: 200}\n");
  DaemonProcess d(RILLFLOWD_PATH, config, {"RF_E2E_DB_URL=" + db.url()});
  REQUIRE(d.wait_ready());
  REQUIRE(eventually([&] { return contains(d.log(), "listening for NOTIFY"); }, 20s));
  // The server ends the daemon's sessions: libpq reports "FATAL: terminating connection ...".
  {
    auto conn = db.raw();
    pqxx::nontransaction(conn).exec(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name like "
        "'rillflowd%'");
  }
  CHECK(eventually([&] { return contains(d.log(), "terminating connection"); }, 20s));
  CHECK(eventually([&] { return http_get(d.port(), "/health/ready").status == 200; }, 30s));
  d.signal(SIGTERM);
  CHECK(d.wait_exit(15s) == 0);
  std::istringstream lines(d.log());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    CAPTURE(line);
    ++n;
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    CHECK_FALSE(ec);
    CHECK((!ec && v.is_object() && v.as_object().contains("msg")));
  }
  CHECK(n > 3);
}
