#include "runtime/membership.hpp"

#include "db/sql.hpp"

#include <algorithm>

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

std::vector<UnitKey> Membership::assign(std::vector<UnitKey> units, std::vector<std::string> live,
                                        const std::string& self) {
  std::sort(units.begin(), units.end());
  units.erase(std::unique(units.begin(), units.end()), units.end());
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  const auto me = std::find(live.begin(), live.end(), self);
  if (me == live.end()) return units;  // alone, or not yet registered: run everything
  const auto index = static_cast<std::size_t>(me - live.begin());
  std::vector<UnitKey> mine;
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (i % live.size() == index) mine.push_back(units[i]);
  }
  return mine;
}

std::vector<UnitKey> assign_units(std::vector<UnitKey> units, std::vector<std::string> live,
                                  const std::string& self) {
  return Membership::assign(std::move(units), std::move(live), self);
}

}  // namespace rillflow::runtime
