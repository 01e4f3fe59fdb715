// Tenant names (no database) and how the deterministic assignment spreads tenants' units over
// runtimes (the property docs/scale-out.md relies on).
#include "runtime/membership.hpp"

#include <rillflow/rillflow.hpp>

#include <doctest/doctest.h>

#include <algorithm>

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

TEST_CASE("one_unit_list_over_all_tenants_spreads_them_evenly_and_per_schema_lists_do_not") {
  std::vector<runtime::UnitKey> units;
  for (int i = 0; i < 200; ++i)
    units.push_back({"projection", "tenant_t" + std::to_string(i) + "/p"});
  const std::vector<std::string> live{"a:1:x", "b:1:y", "c:1:z"};
  std::vector<std::size_t> counts;
  for (const auto& self : live)
    counts.push_back(runtime::Membership::assign(units, live, self).size());
  CHECK(*std::max_element(counts.begin(), counts.end()) -
            *std::min_element(counts.begin(), counts.end()) <=
        1);
  // Assigned one tenant at a time, every tenant's only unit lands on the first runtime.
  std::size_t first = 0;
  for (const auto& u : units) first += runtime::Membership::assign({u}, live, live[0]).size();
  CHECK(first == units.size());
}
