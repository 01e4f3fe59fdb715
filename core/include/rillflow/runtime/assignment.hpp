#pragma once
// Units of work and how the live runtimes split them. Public so that rillflowd's membership
// service (and any embedding program) uses the same split as the core runtime: there is one
// algorithm, core's runtime::Membership::assign.

#include <compare>
#include <string>
#include <vector>

namespace rillflow::runtime {

/// A unit of work: one named thing a runtime leases, checkpoints and retries, of some kind.
struct UnitKey {
  std::string kind;  ///< e.g. "projection"
  std::string name;  ///< unique within the kind, 1 to 200 characters
  /// The tenant whose schema holds it ("": the store's own schema). Core's runtimes work in one
  /// schema and leave it empty; rillflowd runs each unit once per tenant and splits them by it.
  std::string tenant{};

  bool operator==(const UnitKey&) const = default;
  auto operator<=>(const UnitKey&) const = default;
};

/// The units `self` runs when the runtimes `live` share `units`: rendezvous hashing with
/// bounded loads. In (kind, name, tenant) order each unit goes to the live runtime (by owner id)
/// with the highest hash of (owner, unit) among those below the cap, ceil(U/N) + floor(U/10N)
/// units. So a runtime joining or leaving moves about 1/N of the units, a unit added or removed
/// moves few others, and no runtime runs more than the cap. When `self` is not in `live` (or
/// `live` is empty) every unit is returned. Pure and thread-safe: every runtime computes the same
/// split from the same lists.
std::vector<UnitKey> assign_units(std::vector<UnitKey> units, std::vector<std::string> live,
                                  const std::string& self);

}  // namespace rillflow::runtime
