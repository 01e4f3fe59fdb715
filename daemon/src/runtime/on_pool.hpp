#pragma once
// on_pool(pool, fn): runs blocking work (database calls) on the thread pool and resumes the
// awaiting coroutine on its own executor (the loop) with fn's result, or rethrows fn's exception
// there. The daemon's services are coroutines on the loop that await their database work this
// way, so the loop thread never waits for PostgreSQL.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <type_traits>
#include <utility>

namespace rillflow::runtime {

template <class F>
auto on_pool(boost::asio::thread_pool& pool, F fn)
    -> boost::asio::awaitable<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  co_return co_await boost::asio::co_spawn(
      pool,
      [fn = std::move(fn)]() mutable -> boost::asio::awaitable<R> {
        if constexpr (std::is_void_v<R>) {
          fn();
          co_return;
        } else {
          co_return fn();
        }
      },
      boost::asio::use_awaitable);
}

}  // namespace rillflow::runtime
