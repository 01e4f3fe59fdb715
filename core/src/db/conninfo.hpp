#pragma once
// Parsing a libpq URL / key=value string once, so the pool can add settings and errors can
// name the target without ever printing the password.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace rillflow::db {

class ConnInfo {
 public:
  /// Throws rillflow::Error (kInvalidArgument) for a malformed URL, without echoing secrets.
  static ConnInfo parse(const std::string& url);

  /// Sets (or replaces) one libpq keyword.
  void set(const std::string& key, std::string value);
  /// Removes one keyword (no-op when unset).
  void erase(const std::string& key);
  /// The value of a keyword, or "" when unset.
  std::string get(const std::string& key) const;
  /// A key='value' string for PQconnectdb.
  std::string to_conninfo() const;
  /// "host:port/db as user" for messages; never the password.
  std::string describe() const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

}  // namespace rillflow::db
