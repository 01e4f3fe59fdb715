#pragma once

#include <rillflow/events/event.hpp>

#include <cstddef>
#include <iterator>

namespace rillflow {

/// The events of one batch handed to ProjectionHandler::apply_batch, in feed order: the events
/// the projection wants (its event type filter applied), none of them owned. A view, valid only
/// during the call it is passed to. Cheap to copy; thread-safe to read.
class EventBatch {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = EventEnvelope;
    using difference_type = std::ptrdiff_t;
    using pointer = const EventEnvelope*;
    using reference = const EventEnvelope&;

    iterator() = default;
    explicit iterator(const EventEnvelope* const* at) noexcept : at_(at) {}
    reference operator*() const noexcept { return **at_; }
    pointer operator->() const noexcept { return *at_; }
    iterator& operator++() noexcept {
      ++at_;
      return *this;
    }
    iterator operator++(int) noexcept {
      auto before = *this;
      ++at_;
      return before;
    }
    bool operator==(const iterator&) const = default;

   private:
    const EventEnvelope* const* at_ = nullptr;
  };

  EventBatch() = default;
  /// `events` points at `count` pointers to envelopes (which outlive the batch).
  EventBatch(const EventEnvelope* const* events, std::size_t count) noexcept
      : events_(events), count_(count) {}

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  /// The i-th event; `i` must be below size().
  const EventEnvelope& operator[](std::size_t i) const noexcept { return *events_[i]; }
  const EventEnvelope& front() const noexcept { return *events_[0]; }
  const EventEnvelope& back() const noexcept { return *events_[count_ - 1]; }
  iterator begin() const noexcept { return iterator(events_); }
  iterator end() const noexcept { return iterator(events_ + count_); }

 private:
  const EventEnvelope* const* events_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace rillflow
