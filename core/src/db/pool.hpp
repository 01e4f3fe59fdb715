#pragma once
// A thread-safe pool of libpqxx connections. Private to rillflow::core.

#include "db/conninfo.hpp"
#include "db/statement_mode.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace rillflow::db {

/// One pooled connection and the statements prepared on it.
class Connection {
 public:
  /// Routes the connection's notices (and asynchronous errors) to forward_database_notice().
  class NoticeForwarder : public pqxx::errorhandler {
   public:
    using pqxx::errorhandler::errorhandler;
    bool operator()(const char msg[]) noexcept override;
  };

  /// `mode` null: statements are always prepared.
  Connection(const std::string& conninfo, std::shared_ptr<StatementMode> mode);
  pqxx::connection& raw() { return conn_; }
  /// Marks the connection as not to be reused (it failed in a way that leaves it unusable).
  void mark_broken() { broken_ = true; }
  bool usable() { return !broken_ && conn_.is_open(); }
  /// True while statements are prepared under names (see db::exec).
  bool prepares() const noexcept { return mode_ == nullptr || mode_->prepared(); }
  StatementMode* statement_mode() const noexcept { return mode_.get(); }
  /// The name of `sql` prepared on this connection (prepared on first use). With prepared
  /// statements off: the unnamed statement, re-prepared each time, valid only inside the
  /// current transaction. Prefer db::exec, which then sends one Parse/Bind/Execute.
  const std::string& prepared(std::string_view sql);

 private:
  pqxx::connection conn_;
  NoticeForwarder notices_{conn_};  // declared after conn_: unregisters before it closes
  bool broken_ = false;
  std::shared_ptr<StatementMode> mode_;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>()(s);
    }
  };
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> statements_;
};

class Pool {
 public:
  Pool(ConnInfo info, std::size_t max_connections, std::chrono::milliseconds acquire_timeout,
       std::shared_ptr<StatementMode> mode = nullptr);
  ~Pool();

  /// Hands out one connection; returns it to the pool when destroyed, or drops it when it
  /// is broken or discard() was called.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }
    void discard() { discard_ = true; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
    bool discard_ = false;
  };

  /// Waits up to the acquire timeout; throws ConnectionError or Error(kTimeout).
  Lease acquire();
  /// Opens a connection outside the pool (for LISTEN and long-lived sessions).
  std::unique_ptr<Connection> open() const;
  /// "host:port/db as user", never the password.
  const std::string& target() const { return target_; }
  std::size_t open_connections() const;
  /// Null when statements are always prepared.
  StatementMode* statement_mode() const noexcept { return mode_.get(); }

 private:
  void give_back(std::unique_ptr<Connection> conn, bool discard);

  /// `message` redacted, and without the URL's password should it appear verbatim.
  std::string scrub(const std::string& message) const;

  std::string conninfo_;
  std::string target_;
  std::string password_;
  std::size_t max_;
  std::chrono::milliseconds acquire_timeout_;
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
  std::shared_ptr<StatementMode> mode_;
};

}  // namespace rillflow::db
