#pragma once
// Connect: opens the store and migrates the schema on the pool, retrying with backoff while the
// database is down (the status snapshot says why meanwhile).

#include "app/context.hpp"

#include <boost/asio/awaitable.hpp>

namespace rillflow::app {

/// Returns the open store, or nullopt when a stop signal came first.
boost::asio::awaitable<std::optional<Store>> connect(Context& ctx);

}  // namespace rillflow::app
