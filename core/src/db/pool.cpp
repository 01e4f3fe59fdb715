#include "db/pool.hpp"

#include "db/sql.hpp"

#include <rillflow/error.hpp>
#include <rillflow/redact.hpp>

namespace rillflow::db {

Connection::Connection(const std::string& conninfo, std::shared_ptr<StatementMode> mode)
    : conn_(conninfo), mode_(std::move(mode)) {
  // A broken connection stays broken: silently reconnecting would lose session state (prepared
  // statements, LISTENs) and hide a failure in the middle of a transaction. libpqxx 6 marks the
  // switch deprecated only because version 7 removed reactivation altogether.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  conn_.inhibit_reactivation(true);
#pragma GCC diagnostic pop
}

bool Connection::NoticeForwarder::operator()(const char msg[]) noexcept {
  try {
    forward_database_notice(msg);
  } catch (...) {  // a notice must never take the connection down
  }
  return false;  // handled: not passed on to libpqxx's default (stderr)
}

bool StatementMode::turn_off(const std::string& why) {
  if (setting_ != PreparedStatements::kAuto) return false;
  std::lock_guard lock(mutex_);
  if (!prepared_.load()) return false;
  prepared_.store(false, std::memory_order_release);
  if (log_) log_("prepared statements off (database.prepared_statements: auto): " + why);
  return true;
}

const std::string& Connection::prepared(std::string_view sql) {
  if (!prepares()) {
    static const std::string kUnnamed;
    conn_.prepare(kUnnamed, std::string(sql));
    return kUnnamed;
  }
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    std::string name = "rf" + std::to_string(statements_.size());
    conn_.prepare(name, std::string(sql));
    it = statements_.emplace(std::string(sql), std::move(name)).first;
  }
  return it->second;
}

Pool::Pool(ConnInfo info, std::size_t max_connections, std::chrono::milliseconds acquire_timeout,
           std::shared_ptr<StatementMode> mode)
    : conninfo_(info.to_conninfo()),
      target_(info.describe()),
      password_(info.get("password")),
      max_(max_connections == 0 ? 1 : max_connections),
      acquire_timeout_(acquire_timeout),
      mode_(std::move(mode)) {}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->give_back(std::move(conn_), discard_);
}

std::string Pool::scrub(const std::string& message) const {
  std::string out = redact_secrets(message);
  // Very short passwords would match ordinary words; longer ones are cut wherever they appear.
  if (password_.size() >= 4) {
    for (auto at = out.find(password_); at != std::string::npos; at = out.find(password_, at)) {
      out.replace(at, password_.size(), "***");
    }
  }
  return out;
}

std::unique_ptr<Connection> Pool::open() const {
  try {
    return std::make_unique<Connection>(conninfo_, mode_);
  } catch (const pqxx::broken_connection& e) {
    throw ConnectionError(scrub("cannot connect to PostgreSQL at " + target_ + ": " +
                                trim_message(e.what()) +
                                " (is the server running and the URL right?)"));
  } catch (const std::exception& e) {
    throw ConnectionError(
        scrub("cannot connect to PostgreSQL at " + target_ + ": " + trim_message(e.what())));
  }
}

Pool::Lease Pool::acquire() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + acquire_timeout_;
  while (idle_.empty() && open_ >= max_) {
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= max_) {
      throw Error(ErrorCode::kTimeout, "no free database connection after " +
                                           std::to_string(acquire_timeout_.count()) +
                                           " ms (pool size " + std::to_string(max_) +
                                           "); raise max_connections or shorten transactions");
    }
  }
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_;
  lock.unlock();
  try {
    return Lease(this, open());
  } catch (...) {
    lock.lock();
    --open_;
    available_.notify_one();
    throw;
  }
}

void Pool::give_back(std::unique_ptr<Connection> conn, bool discard) {
  const bool usable = !discard && conn->usable();
  if (!usable) conn.reset();  // close outside the lock
  std::lock_guard lock(mutex_);
  if (usable) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  available_.notify_one();
}

std::size_t Pool::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}

}  // namespace rillflow::db
