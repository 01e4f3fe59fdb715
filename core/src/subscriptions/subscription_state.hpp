#pragma once
// What the subscription admin (subscriptions.cpp) and the subscriber (subscriber.cpp) share:
// names, units, stored definitions and groups. A subscription is a consumer kind of the runtime:
// its units (leases, checkpoints, parked events) are work units of kind "subscription" named
//   "<sub>"                 a subscriber without a group (one at a time holds the lease),
//   "<sub>/<group>"         a group whose members share the events (no lease; per-event leases
//                           through subscription_deliveries and member liveness),
//   "<sub>/<group>/<n>"     partition n of a partitioned group (one member holds its lease).
// Names are 1-63 characters of [A-Za-z0-9_.:-] starting with a letter or digit, so '/' only
// ever separates.

#include <rillflow/subscriptions/subscriptions.hpp>

#include "db/pool.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/feed_reader.hpp"
#include "runtime/lease.hpp"
#include "runtime/parking.hpp"
#include "runtime/work_unit.hpp"
#include "store_state.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rillflow::subscriptions {

inline constexpr const char* kKind = "subscription";

/// Throws kInvalidArgument unless `name` is a valid subscription or group name.
void validate_name(std::string_view name, std::string_view what);
std::string unit_name(const std::string& subscription, const std::string& group, int partition);
runtime::UnitKey unit_key(const std::string& subscription, const std::string& group, int partition);
/// The partition (0..partitions-1) of a stream: FNV-1a of the id's 16 bytes.
int partition_of(const Uuid& stream, int partitions);

SubscriptionFilter filter_from_json(const Json& json);

/// A stored definition.
struct Definition {
  std::string name;
  SubscriptionFilter filter;
  std::string start_from;
  std::int64_t start_tick = 0;
  std::int64_t min_global_seq = 0;
  std::optional<std::chrono::system_clock::time_point> min_created_at;
  bool paused = false;
  std::chrono::system_clock::time_point created_at;

  /// Whether `e` passes the filter and the start (not the alias prefix: see alias_ok).
  bool wants(const EventEnvelope& e) const;
};

struct GroupRow {
  std::string name;
  int partitions = 0;
  std::optional<std::int64_t> max_in_flight;
  std::int64_t start_tick = 0;
};

std::optional<Definition> load_definition(pqxx::transaction_base& txn, db::Connection& conn,
                                          const detail::StoreState& state, const std::string& name);
std::optional<GroupRow> load_group(pqxx::transaction_base& txn, db::Connection& conn,
                                   const detail::StoreState& state, const std::string& subscription,
                                   const std::string& group);

/// An int64 array literal for a $n::bigint[] parameter.
std::string bigint_array(const std::vector<std::int64_t>& values);
/// A uuid array literal for a $n::uuid[] parameter.
std::string uuid_array(const std::vector<Uuid>& values);

}  // namespace rillflow::subscriptions
