#include "db/conninfo.hpp"

#include <rillflow/error.hpp>

#include <libpq-fe.h>

#include <memory>

namespace rillflow::db {

ConnInfo ConnInfo::parse(const std::string& url) {
  if (url.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no database URL given (set DATABASE_URL or pass --database-url)");
  }
  char* err = nullptr;
  PQconninfoOption* raw = PQconninfoParse(url.c_str(), &err);
  if (raw == nullptr) {
    std::string why = err != nullptr ? err : "out of memory";
    PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    // libpq's message may quote a fragment of the URL; keep only its first clause.
    if (const auto q = why.find('"'); q != std::string::npos) why = why.substr(0, q);
    throw Error(ErrorCode::kInvalidArgument,
                "malformed database URL (" + why +
                    "); expected postgresql://user@host:port/dbname or 'host=... dbname=...'");
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(raw, &PQconninfoFree);
  ConnInfo info;
  for (const PQconninfoOption* o = raw; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') info.params_.emplace_back(o->keyword, o->val);
  }
  return info;
}

void ConnInfo::set(const std::string& key, std::string value) {
  for (auto& [k, v] : params_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  params_.emplace_back(key, std::move(value));
}

std::string ConnInfo::get(const std::string& key) const {
  for (const auto& [k, v] : params_) {
    if (k == key) return v;
  }
  return {};
}

std::string ConnInfo::to_conninfo() const {
  std::string out;
  for (const auto& [k, v] : params_) {
    if (!out.empty()) out += ' ';
    out += k;
    out += "='";
    for (const char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
  }
  return out;
}

std::string ConnInfo::describe() const {
  std::string host = get("host");
  if (host.empty()) host = get("hostaddr");
  if (host.empty()) host = "localhost";
  std::string port = get("port");
  if (port.empty()) port = "5432";
  std::string out = host + ":" + port;
  if (const auto db = get("dbname"); !db.empty()) out += "/" + db;
  if (const auto user = get("user"); !user.empty()) out += " as " + user;
  return out;
}

}  // namespace rillflow::db
