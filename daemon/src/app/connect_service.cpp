#include "app/connect_service.hpp"

#include "runtime/on_pool.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rillflow::app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct Attempt {
  std::optional<Store> store;
  std::string error;
  std::string failure;
};

Attempt open_store(const Context& ctx) {
  const auto& cfg = ctx.cfg;
  try {
    auto store =
        Store::builder(ctx.url)
            .schema(cfg.schema)
            .max_connections(static_cast<std::size_t>(cfg.database.max_connections))
            .notify_channel(cfg.daemon.notify_channel)
            .application_name("rillflowd")
            .prepared_statements(*parse_prepared_statements(cfg.database.prepared_statements))
            .log_sink([](std::string_view message) { spdlog::warn("{}", message); })
            .build();
    try {
      const auto applied = store.schema().sync();
      if (!applied.empty())
        spdlog::info("applied {} schema migration(s) to '{}'", applied.size(), cfg.schema);
    } catch (const Error& e) {
      spdlog::error(
          "cannot migrate schema '{}': {} (run `rillflow schema-sync` with a privileged role)",
          cfg.schema, e.what());
    }
    return {std::move(store), {}, {}};
  } catch (const Error& e) {
    return {std::nullopt, e.what(), status::classify_db_failure(e)};
  }
}

// Built outside the coroutine body (g++ 12 mishandles captures in coroutine lambdas).
auto open_work(const Context& ctx) {
  return [&ctx] { return open_store(ctx); };
}

}  // namespace

asio::awaitable<std::optional<Store>> connect(Context& ctx) {
  std::chrono::milliseconds backoff = 200ms;
  asio::steady_timer timer(ctx.loop);
  while (!ctx.stopping) {
    Attempt attempt = co_await runtime::on_pool(ctx.pool, open_work(ctx));
    if (attempt.store) co_return std::move(attempt.store);
    ctx.snapshot.db_ok = false;
    ctx.snapshot.db_error = attempt.error;
    ctx.snapshot.db_failure = attempt.failure;
    spdlog::warn("database not reachable yet: {}; retrying in {} ms", attempt.error,
                 backoff.count());
    // Waits on the loop (not the pool), 50 ms at a time so a stop signal ends it promptly.
    for (auto slept = 0ms; slept < backoff && !ctx.stopping; slept += 50ms) {
      timer.expires_after(50ms);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5000ms);
  }
  co_return std::nullopt;
}

}  // namespace rillflow::app
