#include "db/conninfo.hpp"
#include "db/url_encode.hpp"

#include <rillflow/error.hpp>

#include <libpq-fe.h>

#include <cctype>
#include <memory>

namespace rillflow::db {

namespace {

bool hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

// libpq takes a URL's userinfo up to the first '@' or '/', so a password holding an unencoded
// '@' or '/' would be read as host, port or database name, and libpq's errors would quote pieces
// of it. Such URLs are refused here, before libpq sees them, and the message quotes nothing.
void check_url_userinfo(const std::string& url) {
  const auto mark = url.find("://");
  if (mark == std::string::npos) return;
  const std::string scheme = url.substr(0, mark);
  if (scheme != "postgresql" && scheme != "postgres") return;
  std::string rest = url.substr(mark + 3);
  // The query string (after the path) may hold '@' in its values; it is not userinfo.
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    if (const auto query = rest.find('?', slash); query != std::string::npos) rest.resize(query);
  }
  const auto last_at = rest.rfind('@');
  if (last_at == std::string::npos) return;
  const auto first_stop = rest.find_first_of("@/");
  const std::string hint =
      "; percent-encode reserved characters in the user and password (@ as %40, / as %2F, "
      ": as %3A, ? as %3F, # as %23, % as %25, a space as %20)";
  if (first_stop != last_at) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "malformed database URL: its user or password holds an unencoded '@' or '/'" + hint);
  }
  const std::string userinfo = rest.substr(0, last_at);
  for (std::size_t i = 0; i < userinfo.size(); ++i) {
    const char c = userinfo[i];
    if (c == '%' && !(i + 2 < userinfo.size() && hex(userinfo[i + 1]) && hex(userinfo[i + 2]))) {
      throw Error(ErrorCode::kInvalidArgument,
                  "malformed database URL: a '%' in its user or password does not start a "
                  "%XX escape" +
                      hint);
    }
  }
}

}  // namespace

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

ConnInfo ConnInfo::parse(const std::string& url) {
  if (url.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no database URL given (set DATABASE_URL or pass --database-url)");
  }
  check_url_userinfo(url);
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

void ConnInfo::erase(const std::string& key) {
  std::erase_if(params_, [&](const auto& kv) { return kv.first == key; });
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
