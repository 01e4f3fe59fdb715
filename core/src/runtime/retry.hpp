#pragma once
// The retry policy of a unit of work, kind-agnostic: a failing event is retried after an
// exponential delay (base, doubled per attempt, capped), the attempts and the retry time
// persisted with the checkpoint (so a restart or another runtime keeps counting); when the
// attempts are used up the event is parked and the unit moves on, or the unit stops.

#include <rillflow/projections/projection_daemon.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace rillflow::runtime {

struct RetryPolicy {
  int max_attempts = 5;  ///< attempts per event before `on_failure` applies (1 = no retry)
  std::chrono::milliseconds base_delay{1000};
  std::chrono::milliseconds max_delay{300000};
  FailurePolicy on_failure = FailurePolicy::kDeadLetter;

  enum class Action { kRetry, kPark, kStop };

  /// What to do after the `attempts`-th failure of one event.
  Action after_failure(int attempts) const noexcept {
    if (attempts < max_attempts) return Action::kRetry;
    return on_failure == FailurePolicy::kStop ? Action::kStop : Action::kPark;
  }

  /// The wait before the next attempt after `attempts` failures: base * 2^(attempts-1), capped
  /// by max_delay, at least 1 ms.
  std::chrono::milliseconds delay(int attempts) const noexcept {
    const auto cap = std::max<std::int64_t>(1, max_delay.count());
    auto d = std::max<std::int64_t>(1, base_delay.count());
    for (int i = 1; i < attempts && d < cap; ++i) d *= 2;
    return std::chrono::milliseconds(std::min(d, cap));
  }

  static RetryPolicy of(const ProjectionOptions& o) {
    return {std::max(1, o.max_attempts), o.retry_base_delay, o.retry_max_delay, o.on_failure};
  }
};

}  // namespace rillflow::runtime
