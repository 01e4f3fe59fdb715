#include <rillflow/error.hpp>

namespace rillflow {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kConnection:
      return "connection";
    case ErrorCode::kDatabase:
      return "database";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kCommitOutcomeUnknown:
      return "commit_outcome_unknown";
    case ErrorCode::kSchema:
      return "schema";
    case ErrorCode::kNotInstalled:
      return "not_installed";
    case ErrorCode::kVersionConflict:
      return "version_conflict";
    case ErrorCode::kIdempotencyConflict:
      return "idempotency_conflict";
    case ErrorCode::kDocVersionConflict:
      return "doc_version_conflict";
    case ErrorCode::kDocNotFound:
      return "doc_not_found";
    case ErrorCode::kTenantNotFound:
      return "tenant_not_found";
    case ErrorCode::kConfig:
      return "config";
    case ErrorCode::kPlugin:
      return "plugin";
    case ErrorCode::kLeaseHeldElsewhere:
      return "lease_held_elsewhere";
    case ErrorCode::kLeaseLost:
      return "lease_lost";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kHandlerFailed:
      return "handler_failed";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message, std::string sqlstate)
    : std::runtime_error(message), code_(code), sqlstate_(std::move(sqlstate)) {}

bool Error::retryable() const noexcept {
  switch (code_) {
    case ErrorCode::kConnection:
    case ErrorCode::kTimeout:
    case ErrorCode::kVersionConflict:
    case ErrorCode::kDocVersionConflict:
      return true;
    case ErrorCode::kDatabase:
      // serialization_failure, deadlock_detected, lock_not_available
      return sqlstate_ == "40001" || sqlstate_ == "40P01" || sqlstate_ == "55P03";
    default:
      return false;
  }
}

bool Error::connection_unusable() const noexcept {
  return code_ == ErrorCode::kConnection || code_ == ErrorCode::kCommitOutcomeUnknown;
}

VersionConflict::VersionConflict(std::string stream_id, std::string expected, std::int64_t actual)
    : Error(ErrorCode::kVersionConflict,
            "version conflict on stream " + stream_id + ": expected " + expected +
                ", actual version " + std::to_string(actual) +
                " (reload the stream and retry, or append with Expected::any())"),
      stream_id_(std::move(stream_id)),
      expected_(std::move(expected)),
      actual_(actual) {}

TenantNotFound::TenantNotFound(std::string tenant, std::string schema)
    : Error(ErrorCode::kTenantNotFound,
            "TenantNotFound(\"" + schema + "\"): tenant '" + tenant +
                "' is not provisioned (run Store::ensure_tenant or `rillflow tenants ensure " +
                tenant + "`)"),
      tenant_(std::move(tenant)),
      schema_(std::move(schema)) {}

LeaseHeldElsewhere::LeaseHeldElsewhere(std::string kind, std::string name)
    : Error(ErrorCode::kLeaseHeldElsewhere,
            kind + " '" + name +
                "' is leased by another runtime; stop it (or wait for its lease to expire)"),
      kind_(std::move(kind)),
      name_(std::move(name)) {}

LeaseLost::LeaseLost(std::string kind, std::string name, std::int64_t epoch)
    : Error(ErrorCode::kLeaseLost, "lost the lease of " + kind + " '" + name + "' (epoch " +
                                       std::to_string(epoch) +
                                       " was taken over or released); nothing was committed"),
      kind_(std::move(kind)),
      name_(std::move(name)),
      epoch_(epoch) {}

NotFound::NotFound(std::string what, std::string name)
    : Error(ErrorCode::kNotFound, "no " + what + " named '" + name + "' exists"),
      what_(std::move(what)),
      name_(std::move(name)) {}

IdempotencyConflict::IdempotencyConflict(std::string stream_id, std::string key)
    : Error(ErrorCode::kIdempotencyConflict,
            "idempotency key '" + key + "' on stream " + stream_id +
                " was already used for a different append (use a new key for new events)"),
      stream_id_(std::move(stream_id)),
      key_(std::move(key)) {}

DocVersionConflict::DocVersionConflict(std::string collection, std::string id,
                                       std::int64_t expected, std::int64_t actual)
    : Error(ErrorCode::kDocVersionConflict,
            "version conflict on document " + collection + "/" + id + ": expected version " +
                std::to_string(expected) + ", actual version " + std::to_string(actual) +
                " (reload the document and retry)"),
      collection_(std::move(collection)),
      id_(std::move(id)),
      expected_(expected),
      actual_(actual) {}

DocNotFound::DocNotFound(std::string collection, std::string id)
    : Error(ErrorCode::kDocNotFound,
            id.empty() ? "no document in collection " + collection + " matched the query"
                       : "document " + collection + "/" + id + " not found"),
      collection_(std::move(collection)),
      id_(std::move(id)) {}

ConfigError::ConfigError(std::string key_path, const std::string& message)
    : Error(ErrorCode::kConfig, key_path.empty() ? message : key_path + ": " + message),
      key_path_(std::move(key_path)) {}

}  // namespace rillflow
