#pragma once
// on_pool(pool, fn): runs blocking work (database calls) on the thread pool and resumes the
// awaiting coroutine on its own executor (the loop) with fn's result, or rethrows fn's exception
// there. The daemon's services are coroutines on the loop that await their database work this
// way, so the loop thread never waits for PostgreSQL. A void fn yields std::monostate. The
// result type must be default-constructible (it is the placeholder when fn throws).
//
// Written as an async operation (async_initiate), not as a coroutine lambda: the captures of a
// coroutine lambda do not live in its frame.

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace rillflow::runtime {

template <class F>
auto on_pool(boost::asio::thread_pool& pool, F fn) {
  using R = std::invoke_result_t<F&>;
  using Result = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>,
                                     void(std::exception_ptr, Result)>(
      [&pool](auto handler, F work) {
        boost::asio::post(pool, [handler = std::move(handler), work = std::move(work)]() mutable {
          std::exception_ptr error;
          std::optional<Result> result;
          try {
            if constexpr (std::is_void_v<R>) {
              work();
              result.emplace();
            } else {
              result.emplace(work());
            }
          } catch (...) {
            error = std::current_exception();
          }
          auto executor = boost::asio::get_associated_executor(handler);
          boost::asio::dispatch(executor, [handler = std::move(handler), error,
                                           result = std::move(result)]() mutable {
            std::move(handler)(error, result ? std::move(*result) : Result{});
          });
        });
      },
      boost::asio::use_awaitable, std::move(fn));
}

}  // namespace rillflow::runtime
