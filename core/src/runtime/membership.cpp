#include "runtime/membership.hpp"

#include "db/sql.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace rillflow::runtime {

Membership::Membership(const detail::StoreState& state, std::string owner,
                       std::chrono::milliseconds live_window)
    : state_(state), owner_(std::move(owner)), live_window_(live_window) {}

std::chrono::milliseconds Membership::live_window_for(std::chrono::milliseconds heartbeat_interval,
                                                      std::chrono::milliseconds lease_ttl) {
  const auto window = heartbeat_interval * 5 / 2;
  return std::max(std::chrono::milliseconds(1), std::min(window, lease_ttl));
}

std::vector<std::string> Membership::heartbeat() const {
  return db::without_transaction(state_.connections(), [&](pqxx::nontransaction& txn,
                                                           db::Connection& conn) {
    db::exec(
        txn, conn,
        state_.sql(
            "insert into {schema}.daemon_nodes (owner) values ($1) on conflict (owner) do update "
            "set heartbeat_at = now()"),
        owner_);
    db::exec(
        txn, conn,
        state_.sql(
            "delete from {schema}.daemon_nodes where heartbeat_at < now() - interval '1 hour'"));
    std::vector<std::string> live;
    for (const auto& row : db::exec(
             txn, conn,
             state_.sql("select owner from {schema}.daemon_nodes where heartbeat_at > now() - $1 * "
                        "interval '1 millisecond' order by owner"),
             live_window_.count())) {
      live.push_back(row[0].as<std::string>());
    }
    return live;
  });
}

void Membership::leave() const {
  db::without_transaction(state_.connections(), [&](pqxx::nontransaction& txn,
                                                    db::Connection& conn) {
    db::exec(txn, conn, state_.sql("delete from {schema}.daemon_nodes where owner = $1"), owner_);
  });
}

namespace {

// The same on every machine and build (std::hash is not): FNV-1a over the fields, each ended by
// a byte no name holds, then splitmix64's finaliser to spread the bits.
std::uint64_t rendezvous_score(const std::string& owner, const UnitKey& unit) {
  std::uint64_t h = 14695981039346656037ull;
  const auto add = [&h](std::string_view s) {
    for (const unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  add(owner);
  add(unit.kind);
  add(unit.name);
  add(unit.tenant);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace

std::vector<UnitKey> Membership::assign(std::vector<UnitKey> units, std::vector<std::string> live,
                                        const std::string& self) {
  std::sort(units.begin(), units.end());
  units.erase(std::unique(units.begin(), units.end()), units.end());
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  if (std::find(live.begin(), live.end(), self) == live.end()) {
    return units;  // alone, or not yet registered: run everything
  }
  const std::size_t n = live.size();
  const std::size_t cap = (units.size() + n - 1) / n + units.size() / (10 * n);
  std::vector<std::size_t> load(n, 0);
  std::vector<UnitKey> mine;
  for (const auto& unit : units) {
    std::size_t best = n;
    std::uint64_t best_score = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (load[i] >= cap) continue;
      const auto score = rendezvous_score(live[i], unit);
      if (best == n || score > best_score) {
        best = i;
        best_score = score;
      }
    }
    ++load[best];
    if (live[best] == self) mine.push_back(unit);
  }
  return mine;
}

std::vector<UnitKey> assign_units(std::vector<UnitKey> units, std::vector<std::string> live,
                                  const std::string& self) {
  return Membership::assign(std::move(units), std::move(live), self);
}

}  // namespace rillflow::runtime
