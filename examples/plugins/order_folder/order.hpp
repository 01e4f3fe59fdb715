#pragma once
// The example aggregate: one order, folded from the quickstart's order events (OrderPlaced,
// OrderPaid, OrderShipped, OrderCancelled). Any other event only advances the version.
#include <rillflow/rillflow.hpp>

#include <boost/describe.hpp>

#include <cstdint>
#include <string>

namespace example {

struct Order {
  std::string status = "new";  ///< new | placed | paid | shipped | cancelled
  std::string customer;
  double total = 0;
  double paid = 0;
  std::int64_t events = 0;  ///< events folded
  std::int64_t v = 0;       ///< stream_seq of the last event folded

  void apply(const rillflow::EventEnvelope& e) {
    const auto* body = e.body.is_object() ? &e.body.as_object() : nullptr;
    auto number = [&](const char* key) {
      const auto* x = body != nullptr ? body->if_contains(key) : nullptr;
      return x != nullptr && x->is_number() ? x->to_number<double>() : 0.0;
    };
    if (e.type == "OrderPlaced") {
      status = "placed";
      total = number("total");
      if (const auto* c = body != nullptr ? body->if_contains("customer") : nullptr;
          c != nullptr && c->is_string()) {
        customer = c->as_string().c_str();
      }
    } else if (e.type == "OrderPaid") {
      paid += number("amount");
      status = "paid";
    } else if (e.type == "OrderShipped") {
      status = "shipped";
    } else if (e.type == "OrderCancelled") {
      status = "cancelled";
    }
    ++events;
    v = e.stream_seq;
  }
  std::int64_t version() const { return v; }
};
BOOST_DESCRIBE_STRUCT(Order, (), (status, customer, total, paid, events, v))

}  // namespace example
