#include "listen/notify_listener.hpp"

#include <rillflow/redact.hpp>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdlib>

namespace rillflow::listen {

namespace asio = boost::asio;

NotifyListener::NotifyListener(asio::io_context& loop, asio::thread_pool& pool, std::string url,
                               std::string channel, Wakeup on_wakeup)
    : loop_(loop),
      pool_(pool),
      url_(std::move(url)),
      channel_(std::move(channel)),
      on_wakeup_(std::move(on_wakeup)),
      socket_(loop),
      retry_timer_(loop) {}

NotifyListener::~NotifyListener() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void NotifyListener::start() {
  connect();
}

void NotifyListener::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

// Blocking connect + LISTEN on the pool; the result comes back to the loop.
void NotifyListener::connect() {
  asio::post(pool_, [self = shared_from_this()] {
    // The URL plus keepalives (a dead path is noticed in ~25 s, then we reconnect) and a name
    // operators can find in pg_stat_activity.
    const char* keys[] = {"dbname",
                          "application_name",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "connect_timeout",
                          nullptr};
    const char* values[] = {
        self->url_.c_str(), "rillflowd-listen", "1", "10", "5", "3", "5", nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    PQsetNoticeProcessor(
        conn, [](void*, const char* message) { rillflow::forward_database_notice(message); },
        nullptr);
    std::string error;
    bool pooled = false;
    if (PQstatus(conn) != CONNECTION_OK) {
      error = PQerrorMessage(conn);
    } else {
      // The channel is a validated identifier; quote it all the same.
      PGresult* r = PQexec(conn, ("LISTEN \"" + self->channel_ + "\"").c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQerrorMessage(conn);
      PQclear(r);
      // A pooler hands out a process id of its own in the handshake.
      if (error.empty()) {
        r = PQexec(conn, "select pg_backend_pid()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
          pooled = std::atoi(PQgetvalue(r, 0, 0)) != PQbackendPID(conn);
        PQclear(r);
      }
      if (error.empty() && PQsetnonblocking(conn, 1) != 0)
        error = "cannot make the connection non-blocking";
    }
    if (!error.empty()) {
      PQfinish(conn);
      conn = nullptr;
      while (!error.empty() && error.back() == '\n') error.pop_back();
    }
    asio::post(self->loop_, [self, conn, error, pooled] {
      if (self->stopped_) {
        if (conn != nullptr) PQfinish(conn);
        return;
      }
      if (pooled && !self->warned_pooled_) {
        self->warned_pooled_ = true;
        spdlog::warn(
            "the LISTEN connection goes through a connection pooler: under transaction pooling "
            "its notifications are lost (workers still poll); point database.listen_url_env / "
            "listen_url_file at PostgreSQL directly");
      }
      if (conn == nullptr) {
        self->drop_and_retry(error);
      } else {
        self->attach(conn);
      }
    });
  });
}

void NotifyListener::attach(PGconn* conn) {
  conn_ = conn;
  backoff_ = std::chrono::milliseconds(100);
  boost::system::error_code ec;
  socket_.assign(::dup(PQsocket(conn_)), ec);  // our own fd: PQfinish closes the original
  if (ec) {
    drop_and_retry("cannot watch the LISTEN socket: " + ec.message());
    return;
  }
  spdlog::info("listening for NOTIFY on channel {}", channel_);
  on_wakeup_({});  // catch up on anything committed while not listening
  wait();
}

void NotifyListener::wait() {
  socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (ec || self->stopped_) return;
                       self->on_readable();
                     });
}

void NotifyListener::on_readable() {
  if (PQconsumeInput(conn_) == 0) {
    std::string why = PQerrorMessage(conn_);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    drop_and_retry("LISTEN connection lost: " + why);
    return;
  }
  std::vector<std::string> schemas;
  while (PGnotify* n = PQnotifies(conn_)) {
    if (std::find(schemas.begin(), schemas.end(), n->extra) == schemas.end())
      schemas.emplace_back(n->extra);
    PQfreemem(n);
  }
  if (!schemas.empty()) on_wakeup_(schemas);
  wait();
}

void NotifyListener::drop_and_retry(const std::string& why) {
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  if (stopped_) return;
  spdlog::warn("{}; reconnecting in {} ms (polling meanwhile)", why, backoff_.count());
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
  retry_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && !self->stopped_) self->connect();
  });
}

}  // namespace rillflow::listen
