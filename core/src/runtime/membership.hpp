#pragma once
// Membership: which runtimes are alive, and which units of work each runs.
//
// Every runtime renews its row in {schema}.daemon_nodes once per heartbeat interval. A runtime
// is live while its heartbeat is younger than the live window (about two intervals; never more
// than the lease TTL), so a killed runtime stops counting after two missed beats, not after a
// whole lease TTL. leave() removes the row on shutdown. assign() splits units of any kind
// deterministically across the live set: every runtime computes the same split from the same
// inputs, and a runtime that is not (yet) in the live set runs every unit it is given, so work is
// never left without a candidate; leases keep two runtimes from running one unit at once.

#include "runtime/work_unit.hpp"
#include "store_state.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace rillflow::runtime {

class Membership {
 public:
  Membership(const detail::StoreState& state, std::string owner,
             std::chrono::milliseconds live_window);

  /// The live window for a heartbeat interval and a lease TTL: 2.5 intervals, capped by the TTL.
  static std::chrono::milliseconds live_window_for(std::chrono::milliseconds heartbeat_interval,
                                                   std::chrono::milliseconds lease_ttl);

  /// Records this runtime as alive; returns the owner ids of every live runtime, sorted
  /// (this one included). Forgets runtimes silent for an hour.
  std::vector<std::string> heartbeat() const;
  /// Removes this runtime from the live set, so the others take its work over at once.
  void leave() const;

  /// The units `self` runs when the runtimes `live` share `units` (see assign_units).
  static std::vector<UnitKey> assign(std::vector<UnitKey> units, std::vector<std::string> live,
                                     const std::string& self);

 private:
  const detail::StoreState& state_;
  std::string owner_;
  std::chrono::milliseconds live_window_;
};

}  // namespace rillflow::runtime
