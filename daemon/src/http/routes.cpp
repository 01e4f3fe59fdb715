#include "http/routes.hpp"
#include "http/status_page.hpp"

#include <rillflow/json.hpp>
#include <rillflow/redact.hpp>

#include <algorithm>
#include <utility>

namespace rillflow::http {

namespace {

Response json(unsigned status, const Json& body) {
  return {status, "application/json", boost::json::serialize(body) + "\n"};
}

Json time_or_null(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? Json(format_timestamp(*t)) : Json(nullptr);
}

// Why a consumer waits on an open transaction (docs/operators.md, "Stalls explained").
void add_stall(boost::json::object& o, const status::WorkerView& w) {
  o["stalled"] = w.stalled();
  o["blocked_seconds"] = w.blocked_seconds();
  o["blocked_by"] = w.blocked_by ? to_json(*w.blocked_by) : Json(nullptr);
  o["blocked_by_count"] = w.blockers;
}

// A snapshotter: its role here and what its last run did (a run holds the lease only while it
// lasts, so "owned" is not reported).
Json snapshotter_json(const status::WorkerView& w) {
  const auto& v = w.snapshotter;
  boost::json::object o{
      {"kind", w.kind},
      {"name", w.name},
      {"assigned", w.assigned},
      {"running", w.running},
      {"running_for_seconds", w.running_for_seconds},
      {"waiting", w.waiting_reason},
      {"interval_ms", v.interval_ms},
      {"last_run_at", time_or_null(v.last_run_at)},
      {"last_report",
       v.last_run_at
           ? Json(boost::json::object{{"candidates", v.candidates},
                                      {"written", v.written},
                                      {"superseded", v.superseded},
                                      {"failures", v.failures},
                                      {"max_events_since_snapshot", v.max_events_since_snapshot},
                                      {"duration_seconds", v.duration_seconds},
                                      {"lease_held_elsewhere", v.lease_held_elsewhere}})
           : Json(nullptr)},
      {"last_error", v.last_error.empty() ? Json(nullptr) : Json(redact_secrets(v.last_error))},
      {"last_error_at", time_or_null(v.last_error_at)}};
  add_stall(o, w);
  return o;
}

// One entry per (subscription, group) this node runs units of: its units here (assigned, holding,
// this process's counts) and the group's stored figures (members, partition owners and
// checkpoints, lag, in flight), as the unit of the lowest partition read them.
boost::json::array subscriptions_json(const std::vector<status::WorkerView>& workers) {
  boost::json::array out;
  std::vector<std::pair<std::string, std::string>> seen;
  for (const auto& first : workers) {
    if (first.kind != "subscription") continue;
    const auto key = std::make_pair(first.subscription.subscription, first.subscription.group);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    boost::json::object o{{"name", key.first},
                          {"group", key.second.empty() ? Json(nullptr) : Json(key.second)},
                          {"ack", first.subscription.ack}};
    boost::json::array units;
    for (const auto& w : workers) {
      const auto& v = w.subscription;
      if (w.kind != "subscription" || v.subscription != key.first || v.group != key.second)
        continue;
      units.push_back(boost::json::object{
          {"unit", w.name},
          {"partition", v.partition < 0 ? Json(nullptr) : Json(v.partition)},
          {"assigned", w.assigned},
          {"holding", v.holding},
          {"running", w.running},
          {"waiting", w.waiting_reason},
          {"delivered", v.delivered},
          {"acked", v.acked},
          {"redelivered", v.redelivered},
          {"parked", v.parked},
          {"last_error",
           v.last_error.empty() ? Json(nullptr) : Json(redact_secrets(v.last_error))}});
      if (!v.group_status) continue;
      const auto& g = *v.group_status;
      o["last_seq"] = g.last_seq;
      o["head"] = g.head;
      o["lag_events"] = g.lag_events;
      o["lag_seconds"] = g.lag_seconds;
      o["in_flight"] = g.in_flight;
      o["max_in_flight"] = g.max_in_flight ? Json(*g.max_in_flight) : Json(nullptr);
      o["partitions"] = g.partitions;
      o["members"] = boost::json::array(g.members.begin(), g.members.end());
      boost::json::array parts;
      for (const auto& p : g.partition_owners) {
        parts.push_back(boost::json::object{{"partition", p.partition},
                                            {"owner", p.owner ? Json(*p.owner) : Json(nullptr)},
                                            {"checkpoint", p.last_global_seq}});
      }
      o["partition_owners"] = std::move(parts);
    }
    o["units"] = std::move(units);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

std::string status_json(const status::StatusSnapshot& s) {
  boost::json::array workers;
  boost::json::array snapshotters;
  for (const auto& w : s.workers) {
    if (w.kind == "snapshotter") {
      snapshotters.push_back(snapshotter_json(w));
      continue;
    }
    if (w.kind == "subscription") continue;  // listed under "subscriptions"
    // The stored state (lease, pause, retries), then what this process knows: its own role and
    // the lag figures ("position" here is the last handled global_seq).
    boost::json::object o = w.status ? to_json(*w.status).as_object() : boost::json::object();
    for (const auto& [key, value] : boost::json::object{
             {"kind", w.kind},
             {"name", w.name},
             {"tenant", w.tenant.empty() ? Json(nullptr) : Json(w.tenant)},
             {"owned", w.owned},
             {"assigned", w.assigned},
             {"running", w.running},
             {"running_for_seconds", w.running_for_seconds},
             {"waiting", w.waiting_reason},
             {"position", w.metrics.position},
             {"head", w.metrics.head},
             {"lag_events", w.metrics.lag_events},
             {"lag_seconds", w.metrics.lag_seconds},
             {"dlq_depth", w.metrics.dlq_count},
             {"dlq_oldest_age_seconds", w.metrics.dlq_oldest_age_seconds},
             {"dlq_oldest_error", w.dlq_oldest_error.empty()
                                      ? Json(nullptr)
                                      : Json(redact_secrets(w.dlq_oldest_error))}}) {
      o[key] = value;
    }
    if (o.contains("last_error") && o["last_error"].is_string()) {
      o["last_error"] = redact_secrets(o["last_error"].as_string());
    }
    add_stall(o, w);
    o["shadow_rebuild"] = w.shadow_rebuild ? to_json(*w.shadow_rebuild) : Json(nullptr);
    workers.push_back(std::move(o));
  }
  const auto reason = status::unready_reason(s);
  return boost::json::serialize(boost::json::object{
             {"version", s.version},
             {"owner", s.owner},
             {"live_nodes", boost::json::array(s.live_nodes.begin(), s.live_nodes.end())},
             {"missing_tenants",
              boost::json::array(s.missing_tenants.begin(), s.missing_tenants.end())},
             {"ready", reason.empty()},
             {"reason", reason},
             {"database",
              boost::json::object{{"reachable", s.db_ok || s.db_failure != "unreachable"},
                                  {"error", redact_secrets(s.db_error)}}},
             {"schema",
              boost::json::object{{"current", s.schema_ok},
                                  {"problems", boost::json::array(s.schema_problems.begin(),
                                                                  s.schema_problems.end())}}},
             {"projections", workers},
             {"snapshotters", snapshotters},
             {"subscriptions", subscriptions_json(s.workers)},
             {"refreshed_at", format_timestamp(s.refreshed_at)}}) +
         "\n";
}

Response route(std::string_view method, std::string_view target,
               const status::StatusSnapshot& status,
               const std::function<std::string()>& metrics_text) {
  const auto path = target.substr(0, target.find('?'));
  const bool known = path == "/" || path == "/health" || path == "/health/live" ||
                     path == "/health/ready" || path == "/metrics" || path == "/status";
  if (!known)
    return json(404, boost::json::object{{"error", "not found"}, {"path", std::string(path)}});
  if (method != "GET" && method != "HEAD")
    return json(405, boost::json::object{{"error", "method not allowed"}});
  if (path == "/") {
    return {200,
            "text/html; charset=utf-8",
            std::string(kStatusPage),
            {{"Content-Security-Policy", status_page_csp()},
             {"X-Content-Type-Options", "nosniff"},
             {"Referrer-Policy", "no-referrer"},
             {"X-Frame-Options", "DENY"}}};
  }
  if (path == "/health/live") return json(200, boost::json::object{{"status", "live"}});
  if (path == "/health/ready" || path == "/health") {  // /health: the seed's name for readiness
    const auto reason = status::unready_reason(status);
    if (reason.empty()) return json(200, boost::json::object{{"status", "ready"}});
    return json(503, boost::json::object{{"status", "unready"}, {"reason", reason}});
  }
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
  return {200, "application/json", status_json(status)};
}

}  // namespace rillflow::http
