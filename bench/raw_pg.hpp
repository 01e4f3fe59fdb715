#pragma once
// The benchmarks' raw-libpq side: one small connection class for every baseline (connect,
// exec, prepare, run prepared or unprepared statements, results freed automatically).
// Errors throw std::runtime_error with the server's message. Not thread-safe (one per thread).

#include <libpq-fe.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using PgResult = std::unique_ptr<PGresult, decltype(&PQclear)>;

class RawPg {
 public:
  /// `application_name` (optional) overrides the URL's, e.g. so that a CPU meter finds the
  /// baseline's backends.
  explicit RawPg(const std::string& url, const char* application_name = nullptr)
      : conn_(connect(url, application_name)) {
    if (conn_ == nullptr) throw std::runtime_error("libpq: out of memory");
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("libpq: cannot connect: " + message);
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);  // NOTICEs are not errors
  }
  RawPg(const RawPg&) = delete;
  RawPg& operator=(const RawPg&) = delete;
  ~RawPg() { PQfinish(conn_); }

  PGconn* get() const { return conn_; }

  PgResult exec(const std::string& sql) { return check(PQexec(conn_, sql.c_str()), sql); }
  void prepare(const std::string& name, const std::string& sql) {
    check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), sql);
  }
  /// A prepared statement with text parameters.
  PgResult exec_prepared(const std::string& name, const std::vector<const char*>& params) {
    return check(PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(),
                                nullptr, nullptr, 0),
                 name);
  }
  /// An unprepared statement with text parameters.
  PgResult exec_params(const std::string& sql, const std::vector<const char*>& params) {
    return check(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                              params.data(), nullptr, nullptr, 0),
                 sql);
  }
  using Rows = std::vector<std::vector<std::string>>;
  /// The first `columns` columns of every row of prepared statement `name`, as text.
  Rows rows(const std::string& name, const std::vector<std::string>& params, int columns = 1) {
    return texts(exec_prepared(name, pointers(params)), columns);
  }
  /// The same for an unprepared statement.
  Rows query(const std::string& sql, const std::vector<std::string>& params, int columns = 1) {
    return texts(exec_params(sql, pointers(params)), columns);
  }

 private:
  static std::vector<const char*> pointers(const std::vector<std::string>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    return values;
  }
  static Rows texts(const PgResult& res, int columns) {
    Rows out;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
      std::vector<std::string> row;
      for (int c = 0; c < columns; ++c) row.emplace_back(PQgetvalue(res.get(), i, c));
      out.push_back(std::move(row));
    }
    return out;
  }
  static PGconn* connect(const std::string& url, const char* application_name) {
    if (application_name == nullptr) return PQconnectdb(url.c_str());
    const char* keys[] = {"dbname", "application_name", nullptr};
    const char* values[] = {url.c_str(), application_name, nullptr};
    return PQconnectdbParams(keys, values, 1);
  }
  PgResult check(PGresult* raw, const std::string& what) {
    PgResult res(raw, &PQclear);
    const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string message = res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn_);
      throw std::runtime_error("libpq: '" + what.substr(0, 80) + "' failed: " + message);
    }
    return res;
  }

  PGconn* conn_;
};

/// Drops a run's schemas when it ends, whether it succeeded or not (on a server named by
/// DATABASE_URL they would otherwise stay behind).
class SchemaDropper {
 public:
  SchemaDropper(std::string url, std::vector<std::string> schemas)
      : url_(std::move(url)), schemas_(std::move(schemas)) {}
  SchemaDropper(const SchemaDropper&) = delete;
  SchemaDropper& operator=(const SchemaDropper&) = delete;
  ~SchemaDropper() {
    try {
      RawPg conn(url_);
      for (const auto& s : schemas_) conn.exec("drop schema if exists \"" + s + "\" cascade");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "could not drop the benchmark schemas: %s\n", e.what());
    }
  }

 private:
  std::string url_;
  std::vector<std::string> schemas_;
};

}  // namespace bench
