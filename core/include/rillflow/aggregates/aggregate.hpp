#pragma once
// What an aggregate is: domain state folded from one event stream.

#include <rillflow/events/event.hpp>
#include <rillflow/json.hpp>

#include <concepts>
#include <cstdint>

namespace rillflow {

/// An aggregate is default-constructible (its "new" state), folds events with
/// apply(const EventEnvelope&), and reports version(): the stream_seq of the last event it
/// applied (0 when none). Typically apply() ends with `version_ = e.stream_seq;`.
template <class A>
concept Aggregate = std::default_initializable<A> && std::copy_constructible<A> &&
    requires(A a, const A& ca, const EventEnvelope& e) {
  a.apply(e);
  { ca.version() } -> std::convertible_to<std::int64_t>;
};

/// An aggregate that can be snapshotted: Boost.JSON converts it both ways (a described struct
/// does with no code). Its JSON form must include whatever version() reads.
template <class A>
concept SnapshotAggregate =
    Aggregate<A> && boost::json::has_value_from<A>::value && boost::json::has_value_to<A>::value;

}  // namespace rillflow
