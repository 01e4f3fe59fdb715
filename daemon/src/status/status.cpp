#include "status/status.hpp"

#include <rillflow/error.hpp>

#include <chrono>

namespace rillflow::status {

std::string classify_db_failure(const std::exception& e) {
  const auto* error = dynamic_cast<const Error*>(&e);
  if (error == nullptr) return "error";
  switch (error->code()) {
    case ErrorCode::kConnection:
    case ErrorCode::kCommitOutcomeUnknown:
      return "unreachable";
    case ErrorCode::kTimeout:
      return error->sqlstate().empty() ? "busy" : "error";
    case ErrorCode::kInvalidArgument:
      // Refused before any server answered (e.g. a database URL libpq would misread).
      return error->sqlstate().empty() ? "unreachable" : "error";
    default:
      return "error";
  }
}

std::string unready_reason(const StatusSnapshot& s) {
  if (s.draining) return "draining: shutting down";
  if (!s.db_ok) {
    return "database " + s.db_failure + (s.db_error.empty() ? std::string() : ": " + s.db_error);
  }
  if (!s.started) return "starting";
  if (std::chrono::system_clock::now() - s.refreshed_at > std::chrono::seconds(5)) {
    return "status not refreshed for over 5 s (database hung?)";
  }
  if (!s.schema_ok) {
    std::string why = "schema not current";
    if (!s.schema_problems.empty()) why += ": " + s.schema_problems.front();
    return why;
  }
  if (!s.missing_tenants.empty()) {
    std::string why = "tenant(s) listed in the config but not provisioned:";
    for (const auto& t : s.missing_tenants) why += " " + t;
    return why + " (rillflow tenants ensure NAME)";
  }
  if (!s.stuck.empty()) {
    std::string why = "stuck worker(s):";
    for (const auto& w : s.stuck) why += " " + w;
    return why;
  }
  return {};
}

}  // namespace rillflow::status
