// Tenant names (no database) and how the deterministic assignment spreads tenants' units over
// runtimes (the property docs/scale-out.md relies on).
#include "runtime/membership.hpp"

#include <rillflow/rillflow.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

using namespace rillflow;

TEST_CASE("tenant_name_rule_is_checked_without_a_database") {
  CHECK(tenant_schema_of("acme") == "tenant_acme");
  CHECK_NOTHROW(validate_tenant_name(std::string(kMaxTenantNameLength, 'z')));
  for (const std::string bad : {"", "Acme", "a-b", "9lives", "_x", "public", "information_schema",
                                "pg_catalog", "pg_anything", "a b", "a\"b", "\xff"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(validate_tenant_name(bad), doctest::Contains("invalid tenant name"),
                         Error);
  }
  CHECK_THROWS_AS(validate_tenant_name(std::string(kMaxTenantNameLength + 1, 'z')), Error);
}

namespace {

// Which runtime of `live` runs each unit.
std::map<std::string, std::string> owners(const std::vector<runtime::UnitKey>& units,
                                          const std::vector<std::string>& live) {
  std::map<std::string, std::string> out;
  for (const auto& self : live) {
    for (const auto& u : runtime::Membership::assign(units, live, self)) {
      CHECK(out.emplace(u.name, self).second);  // never two runtimes for one unit
    }
  }
  return out;
}

std::size_t moved(const std::map<std::string, std::string>& before,
                  const std::map<std::string, std::string>& after) {
  std::size_t n = 0;
  for (const auto& [unit, owner] : before) {
    const auto it = after.find(unit);
    if (it != after.end() && it->second != owner) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("tenant_units_spread_evenly_and_joins_or_new_tenants_move_few_of_them") {
  std::vector<runtime::UnitKey> units;
  for (int i = 0; i < 200; ++i)
    units.push_back({"projection", "tenant_t" + std::to_string(i) + "/p"});
  std::vector<std::string> live{"a:1:x", "b:1:y", "c:1:z"};
  const auto three = owners(units, live);
  REQUIRE(three.size() == units.size());
  std::map<std::string, std::size_t> load;
  for (const auto& [unit, owner] : three) ++load[owner];
  for (const auto& self : live) {
    CAPTURE(self);
    CHECK(load[self] <= 67 + 6);  // the cap: ceil(200/3) + floor(200/30)
    CHECK(load[self] >= 50);
  }
  // A fourth runtime joins: about a quarter of the units move (round robin moved 80%).
  live.push_back("d:1:w");
  CHECK(moved(three, owners(units, live)) <= 200 * 35 / 100);
  live.pop_back();
  // A tenant ensured: its unit is placed, the others stay where they run.
  auto more = units;
  more.push_back({"projection", "tenant_t200/p"});
  CHECK(moved(three, owners(more, live)) <= 3);
  // Assigned one unit at a time (a list per schema), tenants still spread over the runtimes.
  std::map<std::string, std::size_t> single;
  for (const auto& u : units) {
    for (const auto& self : live)
      single[self] += runtime::Membership::assign({u}, live, self).size();
  }
  for (const auto& self : live) CHECK(single[self] >= 40);
}
