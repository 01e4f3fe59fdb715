#pragma once
// The one exception root of Rillflow. Every error thrown across the public API is a
// rillflow::Error (or a subclass callers branch on); third-party exceptions never escape.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rillflow {

/// Stable error codes: the numbers never change once released.
enum class ErrorCode : int {
  kInternal = 1,              ///< a bug or an unexpected state inside Rillflow
  kInvalidArgument = 2,       ///< the caller passed a value Rillflow rejects (name, URL, JSON...)
  kConnection = 3,            ///< PostgreSQL could not be reached or the connection broke
  kDatabase = 4,              ///< PostgreSQL rejected a statement (see sqlstate())
  kTimeout = 5,               ///< waiting for a pooled connection or a lock took too long
  kCommitOutcomeUnknown = 6,  ///< the connection broke during COMMIT: it may or may not have landed
  kSchema = 7,                ///< the schema is missing, behind, or drifted from the library
  kNotInstalled = 8,          ///< a required program (PostgreSQL server binaries) is missing
  kVersionConflict = 10,      ///< a stream's version is not what the append expected
  kIdempotencyConflict = 11,  ///< an idempotency key was reused with a different append
  kDocVersionConflict = 20,   ///< a document's version is not what the write expected
  kDocNotFound = 21,          ///< the document does not exist
  kTenantNotFound = 30,       ///< the tenant's schema has not been provisioned
  kConfig = 40,               ///< the configuration is invalid (key path and value named)
  kPlugin = 41,               ///< a plugin could not be loaded or initialised
  kLeaseHeldElsewhere = 50,   ///< another runtime holds the lease of a unit of work
  kLeaseLost = 51,            ///< this runtime's lease was taken over (or released) meanwhile
  kNotFound = 52,             ///< a named thing (projection, unit of work) does not exist
  kHandlerFailed = 53,        ///< a handler kept failing and its unit of work stopped
};

/// Stable lower-case name of a code, e.g. "version_conflict".
std::string_view error_code_name(ErrorCode code) noexcept;

/// Root of every Rillflow exception.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, std::string sqlstate = {});

  ErrorCode code() const noexcept { return code_; }
  /// True when running the same operation again may succeed (serialization failures,
  /// deadlocks, timeouts, dropped connections before commit, version conflicts after a reload).
  bool retryable() const noexcept;
  /// True when the connection that raised it was discarded from the pool.
  bool connection_unusable() const noexcept;
  /// The PostgreSQL SQLSTATE when the error came from the server, else empty.
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  ErrorCode code_;
  std::string sqlstate_;
};

/// An append's expected version did not match the stream.
class VersionConflict : public Error {
 public:
  VersionConflict(std::string stream_id, std::string expected, std::int64_t actual);
  const std::string& stream_id() const noexcept { return stream_id_; }
  /// The expectation as written, e.g. "exact(3)", "no_stream".
  const std::string& expected() const noexcept { return expected_; }
  /// The stream's version when the append was rejected (0: the stream does not exist).
  std::int64_t actual() const noexcept { return actual_; }

 private:
  std::string stream_id_;
  std::string expected_;
  std::int64_t actual_;
};

/// An idempotency key was used before, on the same stream, for a different append.
class IdempotencyConflict : public Error {
 public:
  IdempotencyConflict(std::string stream_id, std::string key);
  const std::string& stream_id() const noexcept { return stream_id_; }
  const std::string& key() const noexcept { return key_; }

 private:
  std::string stream_id_;
  std::string key_;
};

/// A document write named an expected version the document does not have.
class DocVersionConflict : public Error {
 public:
  DocVersionConflict(std::string collection, std::string id, std::int64_t expected,
                     std::int64_t actual);
  const std::string& collection() const noexcept { return collection_; }
  const std::string& id() const noexcept { return id_; }
  /// The version the write expected (0: the document must not exist yet).
  std::int64_t expected() const noexcept { return expected_; }
  /// The document's version when the write was rejected.
  std::int64_t actual() const noexcept { return actual_; }

 private:
  std::string collection_;
  std::string id_;
  std::int64_t expected_;
  std::int64_t actual_;
};

/// A write or a required read named a document that does not exist (or is soft-deleted).
class DocNotFound : public Error {
 public:
  DocNotFound(std::string collection, std::string id);
  const std::string& collection() const noexcept { return collection_; }
  const std::string& id() const noexcept { return id_; }

 private:
  std::string collection_;
  std::string id_;
};

/// The tenant has not been provisioned (Store::ensure_tenant) in this store's registry, or was
/// dropped. Names the tenant's schema, e.g. "tenant_acme".
class TenantNotFound : public Error {
 public:
  TenantNotFound(std::string tenant, std::string schema);
  const std::string& tenant() const noexcept { return tenant_; }
  /// The schema the tenant lives (or would live) in.
  const std::string& schema() const noexcept { return schema_; }

 private:
  std::string tenant_;
  std::string schema_;
};

/// PostgreSQL is unreachable or the connection dropped. The message names host and port,
/// never the password.
class ConnectionError : public Error {
 public:
  explicit ConnectionError(const std::string& message) : Error(ErrorCode::kConnection, message) {}
};

/// The connection broke while COMMIT was in flight: the transaction may have been applied.
class CommitOutcomeUnknown : public Error {
 public:
  explicit CommitOutcomeUnknown(const std::string& message)
      : Error(ErrorCode::kCommitOutcomeUnknown, message) {}
};

/// Configuration rejected; names the key path and the offending value.
class ConfigError : public Error {
 public:
  ConfigError(std::string key_path, const std::string& message);
  const std::string& key_path() const noexcept { return key_path_; }

 private:
  std::string key_path_;
};

/// A projection plugin could not be loaded or initialised; names the plugin's path.
class PluginError : public Error {
 public:
  PluginError(std::string path, const std::string& message)
      : Error(ErrorCode::kPlugin, "plugin " + path + ": " + message), path_(std::move(path)) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Another runtime holds a valid lease on the unit of work (kind, name): retry after it expires
/// or is released.
class LeaseHeldElsewhere : public Error {
 public:
  LeaseHeldElsewhere(std::string kind, std::string name);
  const std::string& kind() const noexcept { return kind_; }
  const std::string& name() const noexcept { return name_; }

 private:
  std::string kind_;
  std::string name_;
};

/// The lease this runtime held on (kind, name) was taken over or released: whatever the current
/// transaction wrote must not commit (it is rolled back).
class LeaseLost : public Error {
 public:
  LeaseLost(std::string kind, std::string name, std::int64_t epoch);
  const std::string& kind() const noexcept { return kind_; }
  const std::string& name() const noexcept { return name_; }
  /// The fencing epoch that is no longer current.
  std::int64_t epoch() const noexcept { return epoch_; }

 private:
  std::string kind_;
  std::string name_;
  std::int64_t epoch_;
};

/// A named thing does not exist, e.g. a projection with no stored row and no registration.
class NotFound : public Error {
 public:
  NotFound(std::string what, std::string name);
  /// What was looked for, e.g. "projection".
  const std::string& what_kind() const noexcept { return what_; }
  const std::string& name() const noexcept { return name_; }

 private:
  std::string what_;
  std::string name_;
};

}  // namespace rillflow
