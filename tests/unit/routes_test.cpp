// HTTP routing is a pure function of the request and the status snapshot.
#include "http/routes.hpp"
#include "metrics/daemon_metrics.hpp"

#include <rillflow/error.hpp>
#include <rillflow/json.hpp>

#include <doctest/doctest.h>

using namespace rillflow;

namespace {
status::StatusSnapshot healthy() {
  status::StatusSnapshot s;
  s.started = s.db_ok = s.schema_ok = true;
  s.refreshed_at = std::chrono::system_clock::now();
  status::WorkerView w;
  w.name = "orders";
  w.metrics.lag_events = 7;
  w.owned = true;
  s.workers.push_back(w);
  return s;
}
http::Response get(const std::string& path, const status::StatusSnapshot& s) {
  return http::route("GET", path, s, [] { return std::string("rillflow_ready 1\n"); });
}
}  // namespace

TEST_CASE("ready_is_200_only_when_database_schema_and_workers_are_fine") {
  auto s = healthy();
  CHECK(get("/health/ready", s).status == 200);
  CHECK(get("/health/live", s).status == 200);

  auto down = s;
  down.db_ok = false;
  down.db_error = "connection refused";
  auto r = get("/health/ready", down);
  CHECK(r.status == 503);
  CHECK(parse_json(r.body).at("reason").as_string() == "database unreachable: connection refused");
  CHECK(get("/health/live", down).status == 200);

  auto drift = s;
  drift.schema_ok = false;
  drift.schema_problems = {"migration 2 (projections) is pending"};
  CHECK(get("/health/ready", drift).body.find("schema not current: migration 2") !=
        std::string::npos);

  auto stuck = s;
  stuck.stuck = {"orders"};
  CHECK(get("/health/ready", stuck).status == 503);

  auto stale = s;
  stale.refreshed_at -= std::chrono::seconds(30);
  CHECK(get("/health/ready", stale).body.find("not refreshed") != std::string::npos);

  auto draining = s;
  draining.draining = true;
  CHECK(get("/health/ready", draining).body.find("draining") != std::string::npos);
  auto starting = s;
  starting.started = false;
  CHECK(get("/health/ready", starting).status == 503);
}

TEST_CASE("metrics_status_and_unknown_routes") {
  const auto s = healthy();
  auto r = get("/metrics", s);
  CHECK(r.status == 200);
  CHECK(r.content_type.find("text/plain; version=0.0.4") == 0);
  CHECK(r.body == "rillflow_ready 1\n");
  r = get("/status", s);
  const auto status = parse_json(r.body);
  CHECK(status.at("ready").as_bool());
  CHECK(status.at("projections").at(0).at("name").as_string() == "orders");
  CHECK(status.at("projections").at(0).at("lag_events").as_int64() == 7);
  CHECK(get("/health/ready?verbose=1", s).status == 200);
  CHECK(get("/nope", s).status == 404);
  CHECK(http::route("POST", "/health/live", s, [] { return std::string(); }).status == 405);
}

TEST_CASE("status_shows_a_shadow_rebuild_in_progress_and_null_without_one") {
  auto s = healthy();
  CHECK(parse_json(get("/status", s).body).at("projections").at(0).at("shadow_rebuild").is_null());
  ShadowRebuildProgress p;
  p.name = "orders";
  p.shadow_schema = "rillflow_shadow_0123456789abcdef";
  p.done = 120;
  p.total = 400;
  p.rate = 60;
  p.eta_seconds = 280.0 / 60;
  s.workers.at(0).shadow_rebuild = p;
  const auto r = parse_json(get("/status", s).body).at("projections").at(0).at("shadow_rebuild");
  CHECK(r.at("shadow_schema").as_string() == p.shadow_schema);
  CHECK(r.at("done").as_int64() == 120);
  CHECK(r.at("total").as_int64() == 400);
  CHECK(r.at("rate").as_double() == doctest::Approx(60));
  CHECK(r.at("eta_seconds").as_double() == doctest::Approx(4.667).epsilon(0.01));
}

TEST_CASE("readiness_names_the_kind_of_database_failure") {
  CHECK(status::classify_db_failure(ConnectionError("cannot connect to PostgreSQL at h:1")) ==
        "unreachable");
  CHECK(status::classify_db_failure(Error(ErrorCode::kTimeout, "no free database connection")) ==
        "busy");
  const Error prepared(ErrorCode::kDatabase,
                       "PostgreSQL error 42P05: prepared statement \"rf0\" already exists",
                       "42P05");
  CHECK(status::classify_db_failure(prepared) == "error");
  status::StatusSnapshot s;
  s.db_ok = false;
  s.db_error = prepared.what();
  s.db_failure = status::classify_db_failure(prepared);
  const auto reason = status::unready_reason(s);
  CHECK(reason.starts_with("database error: PostgreSQL error 42P05"));
  CHECK(reason.find("unreachable") == std::string::npos);
  const auto status =
      parse_json(http::route("GET", "/status", s, [] { return std::string(); }).body);
  CHECK(status.at("database").at("reachable").as_bool());
}

TEST_CASE("status_lists_snapshotters_apart_from_projections_with_their_last_run") {
  auto s = healthy();
  status::WorkerView w;
  w.kind = "snapshotter";
  w.name = "orders";
  w.assigned = true;
  w.waiting_reason = "failed";
  w.snapshotter.interval_ms = 5000;
  CHECK(parse_json(http::status_json([&] {
          auto t = s;
          t.workers.push_back(w);
          return t;
        }()))
            .at("snapshotters")
            .at(0)
            .at("last_run_at")
            .is_null());
  w.snapshotter.last_run_at = std::chrono::system_clock::now();
  w.snapshotter.candidates = 3;
  w.snapshotter.written = 2;
  w.snapshotter.failures = 1;
  w.snapshotter.max_events_since_snapshot = 450;
  w.snapshotter.last_error = "stream x: postgresql://app:hunter2@db/app refused";
  w.snapshotter.last_error_at = w.snapshotter.last_run_at;
  s.workers.push_back(w);
  const auto doc = parse_json(get("/status", s).body);
  REQUIRE(doc.at("projections").as_array().size() == 1);
  CHECK(doc.at("projections").at(0).at("kind").as_string() == "projection");
  REQUIRE(doc.at("snapshotters").as_array().size() == 1);
  const auto& snap = doc.at("snapshotters").at(0);
  CHECK(snap.at("name").as_string() == "orders");
  CHECK(snap.at("assigned").as_bool());
  CHECK(snap.at("waiting").as_string() == "failed");
  CHECK(snap.at("interval_ms").as_int64() == 5000);
  CHECK(snap.at("last_run_at").is_string());
  CHECK(snap.at("last_report").at("written").as_int64() == 2);
  CHECK(snap.at("last_report").at("failures").as_int64() == 1);
  CHECK(snap.at("last_report").at("max_events_since_snapshot").as_int64() == 450);
  const std::string error(snap.at("last_error").as_string());
  CHECK(error.find("hunter2") == std::string::npos);  // secrets redacted
  CHECK(error.find("refused") != std::string::npos);
}

TEST_CASE("the_status_page_is_served_at_root_with_a_strict_csp_that_hashes_its_inline_blocks") {
  const auto r = get("/", healthy());
  CHECK(r.status == 200);
  CHECK(r.content_type == "text/html; charset=utf-8");
  CHECK(r.body.find("<!DOCTYPE html>") == 0);
  CHECK(r.body.find("id=\"projections\"") != std::string::npos);
  CHECK(r.body.find("fetch(\"status\"") != std::string::npos);
  // Self-contained: nothing is loaded from elsewhere.
  CHECK(r.body.find("src=\"http") == std::string::npos);
  CHECK(r.body.find("href=\"http") == std::string::npos);
  CHECK(r.body.find("innerHTML") == std::string::npos);
  std::string csp;
  for (const auto& [name, value] : r.headers) {
    if (name == "Content-Security-Policy") csp = value;
  }
  CAPTURE(csp);
  CHECK(csp.find("default-src 'none'") == 0);
  CHECK(csp.find("script-src 'sha256-") != std::string::npos);
  CHECK(csp.find("style-src 'sha256-") != std::string::npos);
  CHECK(csp.find("connect-src 'self'") != std::string::npos);
  CHECK(csp.find("unsafe") == std::string::npos);
  CHECK(get("/", healthy()).body == r.body);
  CHECK(http::route("HEAD", "/", healthy(), [] { return std::string(); }).status == 200);
}

TEST_CASE("status_says_why_a_consumer_is_stalled_and_leaves_hidden_fields_out") {
  auto s = healthy();
  CHECK_FALSE(parse_json(get("/status", s).body).at("projections").at(0).at("stalled").as_bool());
  FeedBlocker b;
  b.pid = 4412;
  b.xid = 7731;
  b.age_seconds = 42.2;
  b.application_name = "billing";
  b.blocked_seconds = 40.5;
  s.workers[0].blocked_by = b;
  s.workers[0].blockers = 2;
  const auto p = parse_json(get("/status", s).body).at("projections").at(0).as_object();
  CHECK(p.at("stalled").as_bool());
  CHECK(p.at("blocked_seconds").as_double() == 40.5);
  CHECK(p.at("blocked_by_count").as_int64() == 2);
  const auto& by = p.at("blocked_by").as_object();
  CHECK(by.at("pid").as_int64() == 4412);
  CHECK(by.at("xid").as_int64() == 7731);
  CHECK(by.at("message").as_string() ==
        "waiting for transaction 7731 (pid 4412, open 42 s, billing)");
  // pg_stat_activity hid these from the role: absent, not null.
  CHECK_FALSE(by.contains("state"));
  CHECK_FALSE(by.contains("query"));
}

TEST_CASE("the_blocked_seconds_gauge_is_set_per_consumer_and_zero_when_nothing_blocks") {
  metrics::DaemonMetrics m("test");
  auto s = healthy();
  status::WorkerView snap;
  snap.kind = "snapshotter";
  snap.name = "orders";
  s.workers.push_back(snap);
  FeedBlocker b;
  b.xid = 7;
  b.blocked_seconds = 12.5;
  s.workers[0].blocked_by = b;
  m.observe(s, 1);
  auto text = m.render();
  CHECK(text.find("rillflow_consumer_blocked_seconds{consumer=\"orders\",kind=\"projection\"} "
                  "12.5") != std::string::npos);
  CHECK(text.find("rillflow_consumer_blocked_seconds{consumer=\"orders\",kind=\"snapshotter\"} "
                  "0") != std::string::npos);
  s.workers[0].blocked_by.reset();
  m.observe(s, 1);
  text = m.render();
  CHECK(text.find("rillflow_consumer_blocked_seconds{consumer=\"orders\",kind=\"projection\"} 0") !=
        std::string::npos);
}
