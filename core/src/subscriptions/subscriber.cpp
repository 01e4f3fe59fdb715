// Delivery: subscriber.hpp explains the model.

#include "subscriptions/subscriber.hpp"

#include "db/sql.hpp"
#include "runtime/membership.hpp"

#include <rillflow/error.hpp>

#include <unistd.h>
#include <algorithm>
#include <condition_variable>
#include <random>
#include <thread>

namespace rillflow {

namespace detail {

namespace {

using subscriptions::kKind;

std::string new_member_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", std::random_device{}());
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
}

// The position just before an event at `pos`, when the event read before it stood at `prev`.
FeedPosition before(const FeedPosition& prev, const FeedPosition& pos) {
  if (prev.from_tick == pos.from_tick) return {pos.from_tick, pos.to_tick, prev.after_seq};
  return {pos.from_tick, pos.to_tick, 0};
}

// A member counts as live while its heartbeat is younger than its lease TTL.
constexpr const char* kLive =
    "exists (select 1 from {schema}.subscription_members m where m.subscription = $S and "
    "m.grp = $G and m.member = d.member and m.heartbeat_at > now() - m.ttl_ms * interval '1 "
    "millisecond')";

std::string live_clause(const std::string& s, const std::string& g) {
  std::string out = kLive;
  out.replace(out.find("$S"), 2, s);
  out.replace(out.find("$G"), 2, g);
  return out;
}

class WakeFlag final : public pqxx::notification_receiver {
 public:
  WakeFlag(pqxx::connection_base& c, const std::string& channel)
      : pqxx::notification_receiver(c, channel) {}
  void operator()(const std::string&, int) override {}
};

// An event acknowledged out of order (or in the caller's transaction), kept until the
// checkpoint passes it, so a restart redelivers exactly what was not acknowledged.
constexpr std::string_view kRecordAck = R"sql(
insert into {schema}.subscription_deliveries
  (unit, global_seq, subscription, grp, member, acked, pos_from, pos_to, pos_after, prev_from,
   prev_to, prev_after)
values ($1, $2, $3, '', $4, true, $5, $6, $7, $8, $9, $10)
on conflict (unit, global_seq) do update set acked = true
)sql";

}  // namespace

Subscriber::Subscriber(std::shared_ptr<const StoreState> state, std::string name,
                       SubscriptionOptions options)
    : state_(std::move(state)),
      name_(std::move(name)),
      group_(options.group.value_or("")),
      member_(options.member_id.empty() ? new_member_id() : options.member_id),
      opt_(std::move(options)),
      retry_{std::max(1, opt_.max_attempts), opt_.retry_base_delay, opt_.retry_max_delay,
             opt_.on_failure},
      leases_(*state_, member_, opt_.lease_ttl),
      checkpoints_(*state_),
      parking_(*state_),
      ticker_(*state_) {
  if (opt_.batch_size == 0)
    throw Error(ErrorCode::kInvalidArgument, "batch_size must be 1 or more");
  if (opt_.lease_ttl.count() < 10) {
    throw Error(ErrorCode::kInvalidArgument, "lease_ttl must be at least 10 ms");
  }
  db::without_transaction(state_->connections(),
                          [&](pqxx::nontransaction& txn, db::Connection& conn) {
                            auto d = subscriptions::load_definition(txn, conn, *state_, name_);
                            if (!d) throw NotFound("subscription", name_);
                            def_ = *d;
                            if (!group_.empty()) {
                              auto g = subscriptions::load_group(txn, conn, *state_, name_, group_);
                              if (!g)
                                throw NotFound("group of subscription '" + name_ + "'", group_);
                              rebuild_units(*g);
                            }
                          });
  if (group_.empty()) {
    Unit u;
    u.key = subscriptions::unit_key(name_, "", -1);
    units_.push_back(std::move(u));
  } else {
    std::unique_lock lock(mu_);
    maintain();
  }
}

Subscriber::~Subscriber() {
  try {
    close();
  } catch (...) {
  }
}

FeedPosition Subscriber::unit_start(const Unit& u) const {
  return {u.tracked && group_row_ ? group_row_->start_tick : def_.start_tick, 0, 0};
}

// ---- the receiving side ----

std::optional<EventEnvelope> Subscriber::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (opt_.ack_mode == AckMode::kAuto && last_auto_) {
    mark_acked(*last_auto_);
    last_auto_.reset();
  }
  return take(timeout, opt_.ack_mode == AckMode::kAuto, lock);
}

std::optional<EventEnvelope> Subscriber::take(std::chrono::milliseconds timeout, bool auto_last,
                                              std::unique_lock<std::mutex>& lock, bool listen) {
  if (closed_) throw Error(ErrorCode::kInvalidArgument, "the subscriber was closed");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (listen) open_listener();
  for (const auto seq : acked_in_txn_) out_.erase(seq);
  acked_in_txn_.clear();
  lost_.clear();
  for (;;) {
    // Heartbeat and lease renewals ride on next(): also while a fetched batch is handed out
    // one event at a time, so a member with a slow handler is not taken for gone.
    if (!ready_.empty()) stay_alive();
    if (!ready_.empty()) {
      auto r = std::move(ready_.front());
      ready_.pop_front();
      out_[r.event.global_seq] = {r.unit, r.parked_id, r.pending};
      if (auto_last) last_auto_ = r.event.global_seq;
      last_redelivery_ = r.redelivery;
      return std::move(r.event);
    }
    maintain();
    if (std::chrono::steady_clock::now() - last_flush_ >= opt_.auto_ack_interval) {
      flush();
      last_flush_ = std::chrono::steady_clock::now();
    }
    std::size_t read = 0;
    if (!gone_) {
      for (std::size_t i = 0; i < units_.size(); ++i) {
        if (units_[i].mine) read += fetch(i);
      }
    }
    if (read > 0 || !ready_.empty()) continue;
    flush();  // nothing to hand out: what is acknowledged is written before waiting
    last_flush_ = std::chrono::steady_clock::now();
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    wait_for_news(std::min(opt_.poll_interval,
                           std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                               std::chrono::milliseconds(1)),
                  lock);
    if (closed_) return std::nullopt;
  }
}

std::optional<std::string> Subscriber::deliver(
    const std::function<void(const EventEnvelope&)>& handler, const EventEnvelope& e) {
  try {
    handler(e);
  } catch (const std::exception& ex) {
    return std::string(ex.what());
  } catch (...) {
    return std::string("handler threw a non-standard exception");
  }
  if (opt_.ack_mode == AckMode::kAuto) {
    std::lock_guard lock(mu_);
    mark_acked(e.global_seq);
  }
  return std::nullopt;
}

void Subscriber::run(const std::function<void(const EventEnvelope&)>& handler,
                     std::stop_token stop) {
  while (!stop.stop_requested()) {
    std::optional<EventEnvelope> e;
    {
      std::unique_lock lock(mu_);
      if (closed_) return;
      e = take(opt_.poll_interval, false, lock);
    }
    if (!e) continue;
    for (int attempts = 1;; ++attempts) {
      const auto failure = deliver(handler, *e);
      if (!failure || handed_elsewhere(e->global_seq)) break;
      const std::string& error = *failure;
      switch (retry_.after_failure(attempts)) {
        case runtime::RetryPolicy::Action::kRetry: {
          std::mutex m;
          std::unique_lock l(m);
          std::condition_variable_any cv;
          // In slices, staying alive meanwhile (the member and its leases), as run_available does.
          const auto until = std::chrono::steady_clock::now() + retry_.delay(attempts);
          for (auto now = std::chrono::steady_clock::now(); now < until && !stop.stop_requested();
               now = std::chrono::steady_clock::now()) {
            cv.wait_for(
                l, stop,
                std::min<std::chrono::steady_clock::duration>(until - now, opt_.lease_ttl / 3),
                [] { return false; });
            std::lock_guard lock(mu_);
            stay_alive();
          }
          if (stop.stop_requested()) {
            std::lock_guard lock(mu_);
            flush();
            return;  // not acknowledged: delivered again later
          }
          continue;
        }
        case runtime::RetryPolicy::Action::kPark: {
          std::lock_guard lock(mu_);
          park(e->global_seq, *e, error, attempts);
          break;
        }
        case runtime::RetryPolicy::Action::kStop: {
          std::lock_guard lock(mu_);
          flush();
          throw Error(ErrorCode::kInternal, "subscription '" + name_ + "': event " +
                                                std::to_string(e->global_seq) + " (" + e->type +
                                                ") failed " + std::to_string(attempts) +
                                                " times: " + error);
        }
      }
      break;
    }
  }
  std::lock_guard lock(mu_);
  if (!closed_) flush();
}

RunAvailableResult Subscriber::run_available(
    const std::function<void(const EventEnvelope&)>& handler, std::size_t max_events) {
  RunAvailableResult out;
  if (stopped_) {
    out.stopped = true;
    return out;
  }
  while (out.handled + out.parked < max_events) {
    std::optional<EventEnvelope> e;
    int attempts = 1;
    bool redelivery = false;
    {
      std::unique_lock lock(mu_);
      if (closed_) break;
      if (retrying_) {
        if (std::chrono::steady_clock::now() < retrying_->due) {
          // Nothing else is handed out before it (order), but the member and its leases stay
          // alive while it waits.
          maintain();
          keep_leases();
          out.backoff = true;
          break;
        }
        e = std::move(retrying_->event);
        attempts = retrying_->attempts + 1;
        redelivery = retrying_->redelivery;
        retrying_.reset();
      } else {
        e = take(std::chrono::milliseconds(0), false, lock, false);
        redelivery = last_redelivery_;
      }
    }
    if (!e) break;
    const auto failure = deliver(handler, *e);
    if (!failure) {
      ++out.handled;
      if (redelivery) ++out.redelivered;
      continue;
    }
    if (handed_elsewhere(e->global_seq)) continue;  // not this member's to retry or park
    const std::string& error = *failure;
    ++out.failed;
    std::lock_guard lock(mu_);
    const auto action = retry_.after_failure(attempts);
    if (action == runtime::RetryPolicy::Action::kRetry) {
      retrying_ = Retrying{std::move(*e), attempts,
                           std::chrono::steady_clock::now() + retry_.delay(attempts), redelivery};
      out.backoff = true;
      break;
    }
    if (action == runtime::RetryPolicy::Action::kPark) {
      park(e->global_seq, *e, error, attempts);
      ++out.parked;
      continue;
    }
    flush();
    stopped_ = true;
    out.stopped = true;
    return out;
  }
  out.more = out.handled + out.parked >= max_events;
  std::lock_guard lock(mu_);
  if (!closed_ && std::chrono::steady_clock::now() - last_flush_ >= opt_.auto_ack_interval) {
    flush();
    last_flush_ = std::chrono::steady_clock::now();
  }
  return out;
}

void Subscriber::stay_alive() {
  maintain();  // the member's heartbeat, every lease_ttl / 3
  const auto now = std::chrono::steady_clock::now();
  if (now < next_renewal_) return;
  next_renewal_ = now + opt_.lease_ttl / 3;
  keep_leases();
}

// Renews the leases of the exclusive units held now (hold() renews at most every TTL/3).
void Subscriber::keep_leases() {
  db::without_transaction(state_->connections(),
                          [&](pqxx::nontransaction& txn, db::Connection& conn) {
                            for (auto& u : units_) {
                              if (u.mine && u.exclusive && u.epoch) hold(u, txn, conn);
                            }
                          });
}

void Subscriber::open_listener() {
  const auto& channel = state_->options.notify_channel;
  if (channel.empty() || listener_) return;
  try {
    listen_conn_ = state_->connections().open();
    listener_ = std::make_unique<WakeFlag>(listen_conn_->raw(), channel);
  } catch (...) {
    listener_.reset();
    listen_conn_.reset();  // polling only; tried again next time
  }
}

void Subscriber::wait_for_news(std::chrono::milliseconds d, std::unique_lock<std::mutex>& lock) {
  open_listener();
  if (!listener_) {
    lock.unlock();
    std::this_thread::sleep_for(d);
    lock.lock();
    return;
  }
  auto* conn = listen_conn_.get();
  lock.unlock();
  bool broken = false;
  try {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    conn->raw().await_notification(static_cast<long>(us / 1000000),
                                   static_cast<long>(us % 1000000));
  } catch (...) {
    broken = true;
  }
  lock.lock();
  if (broken) {
    listener_.reset();
    listen_conn_.reset();
  }
}

// ---- membership (groups) ----

void Subscriber::maintain() {
  if (group_.empty() || gone_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + opt_.lease_ttl / 3;
  std::vector<std::string> live;
  std::optional<subscriptions::GroupRow> g;
  db::without_transaction(state_->connections(), [&](pqxx::nontransaction& txn,
                                                     db::Connection& conn) {
    db::exec(txn, conn,
             sql("insert into {schema}.subscription_members (subscription, grp, member, ttl_ms) "
                 "values ($1, $2, $3, $4) on conflict (subscription, grp, member) do update set "
                 "heartbeat_at = now(), ttl_ms = excluded.ttl_ms"),
             name_, group_, member_, static_cast<std::int64_t>(opt_.lease_ttl.count()));
    auto d = subscriptions::load_definition(txn, conn, *state_, name_);
    g = subscriptions::load_group(txn, conn, *state_, name_, group_);
    if (!d || !g) {
      gone_ = true;
      return;
    }
    def_ = *d;
    for (const auto& r : db::exec(txn, conn,
                                  sql("select member from {schema}.subscription_members where "
                                      "subscription = $1 and grp = $2 and heartbeat_at > now() - "
                                      "ttl_ms * interval '1 millisecond' order by member"),
                                  name_, group_)) {
      live.push_back(r[0].as<std::string>());
    }
  });
  if (gone_) return;
  if (!group_row_ || g->partitions != group_row_->partitions ||
      g->start_tick != group_row_->start_tick) {
    rebuild_units(*g);
  }
  group_row_ = g;
  if (g->partitions == 0) return;
  std::vector<runtime::UnitKey> keys;
  for (const auto& u : units_) keys.push_back(u.key);
  std::vector<runtime::UnitKey> mine;
  if (opt_.partition) {
    // The caller assigns partitions (rillflowd's membership): only the one it named.
    for (const auto& u : units_) {
      if (u.partition == *opt_.partition) mine.push_back(u.key);
    }
  } else {
    mine = runtime::Membership::assign(keys, live, member_);
  }
  for (std::size_t i = 0; i < units_.size(); ++i) {
    const bool now_mine = std::find(mine.begin(), mine.end(), units_[i].key) != mine.end();
    if (units_[i].mine && !now_mine) give_up(i);
    units_[i].mine = now_mine;
  }
}

void Subscriber::rebuild_units(const subscriptions::GroupRow& g) {
  // The group was re-partitioned or reset: what this member held belongs to units that no
  // longer exist (their rows are gone), so nothing is written back.
  ready_.clear();
  out_.clear();
  last_auto_.reset();
  retrying_.reset();
  units_.clear();
  group_row_ = g;
  const int n = g.partitions;
  for (int p = 0; p < std::max(1, n); ++p) {
    Unit u;
    u.key = subscriptions::unit_key(name_, group_, n == 0 ? -1 : p);
    u.partition = n == 0 ? -1 : p;
    u.tracked = true;
    u.exclusive = n > 0;
    units_.push_back(std::move(u));
  }
}

// Stops working on a partition assigned elsewhere now: acknowledgements written, events not
// handed out yet given back, lease released. Events handed out stay this member's until it
// acknowledges them (the new holder waits for them: per-stream order).
void Subscriber::give_up(std::size_t index) {
  auto& u = units_[index];
  flush_unit(u);
  db::without_transaction(state_->connections(),
                          [&](pqxx::nontransaction& txn, db::Connection& conn) {
                            give_back_ready(index, txn, conn);
                            if (u.epoch) leases_.release(txn, conn, u.key);
                          });
  u.epoch.reset();
}

void Subscriber::give_back_ready(std::size_t index, pqxx::transaction_base& txn,
                                 db::Connection& conn) {
  std::vector<std::int64_t> seqs;
  std::deque<Ready> keep;
  for (auto& r : ready_) {
    if (r.unit == index) {
      if (!r.parked_id) seqs.push_back(r.event.global_seq);
    } else {
      keep.push_back(std::move(r));
    }
  }
  ready_ = std::move(keep);
  if (seqs.empty() || !units_[index].tracked) return;
  db::exec(txn, conn,
           sql("update {schema}.subscription_deliveries set member = '' where unit = $1 and "
               "member = $2 and not acked and global_seq = any($3::bigint[])"),
           units_[index].key.name, member_, subscriptions::bigint_array(seqs));
}

// ---- leases and fetching ----

// Takes or renews the lease of an exclusive unit (renewal at most every TTL/3). A new epoch means
// the unit may have moved meanwhile: its state is read again from its checkpoint.
bool Subscriber::hold(Unit& u, pqxx::transaction_base& txn, db::Connection& conn) {
  const auto now = std::chrono::steady_clock::now();
  if (u.epoch && now - u.renewed < opt_.lease_ttl / 3) return true;
  if (!u.row_known) {
    leases_.ensure(txn, conn, u.key, unit_start(u));
    u.row_known = true;
  }
  const auto st = leases_.acquire(txn, conn, u.key);
  const auto index = static_cast<std::size_t>(&u - units_.data());
  if (!st) {
    if (u.epoch && !u.tracked) forget_ungrouped(index);
    if (u.epoch && u.tracked) give_back_ready(index, txn, conn);
    u.epoch.reset();
    u.row_known = false;
    return false;
  }
  u.renewed = now;
  u.requeued = u.requeued || st->requeued;
  if (!u.epoch || *u.epoch != st->epoch) {
    if (!u.tracked) {
      forget_ungrouped(index);
      u.checkpoint = u.cursor = st->position;
      for (const auto& r : db::exec(txn, conn,
                                    sql("select global_seq from {schema}.subscription_deliveries "
                                        "where unit = $1 and acked"),
                                    u.key.name)) {
        u.skip.insert(r[0].as<std::int64_t>());
      }
      if (auto d = subscriptions::load_definition(txn, conn, *state_, name_)) def_ = *d;
    } else {
      give_back_ready(index, txn, conn);
    }
    u.epoch = st->epoch;
  }
  if (st->paused || st->stopped) return false;
  return true;
}

void Subscriber::forget_ungrouped(std::size_t index) {
  auto& u = units_[index];
  u.pending_base += u.pending.size();
  u.pending.clear();
  u.skip.clear();
  u.txn_acks.clear();
  u.acked.clear();
  u.parked_done.clear();
  std::erase_if(ready_, [&](const Ready& r) { return r.unit == index; });
  std::erase_if(out_, [&](const auto& kv) { return kv.second.unit == index; });
  if (last_auto_ && !out_.contains(*last_auto_)) last_auto_.reset();
  if (retrying_ && !out_.contains(retrying_->event.global_seq)) retrying_.reset();
}

std::size_t Subscriber::fetch(std::size_t index) {
  return units_[index].tracked ? fetch_group(index) : fetch_ungrouped(index);
}

void Subscriber::resolve_aliases(pqxx::transaction_base& txn, db::Connection& conn,
                                 const std::vector<EventEnvelope>& events) {
  if (!def_.filter.alias_prefix) return;
  std::vector<Uuid> unknown;
  for (const auto& e : events) {
    if (!alias_match_.contains(e.stream_id) &&
        std::find(unknown.begin(), unknown.end(), e.stream_id) == unknown.end()) {
      unknown.push_back(e.stream_id);
    }
  }
  if (unknown.empty()) return;
  for (const auto& id : unknown) alias_match_[id] = false;
  for (const auto& r : db::exec(txn, conn,
                                sql("select stream_id::text from {schema}.stream_aliases where "
                                    "stream_id = any($1::uuid[]) and starts_with(alias, $2)"),
                                subscriptions::uuid_array(unknown), *def_.filter.alias_prefix)) {
    alias_match_[parse_uuid(r[0].as<std::string>())] = true;
  }
}

bool Subscriber::alias_ok(const EventEnvelope& e) const {
  if (!def_.filter.alias_prefix) return true;
  const auto it = alias_match_.find(e.stream_id);
  return it != alias_match_.end() && it->second;
}

std::size_t Subscriber::fetch_ungrouped(std::size_t index) {
  return db::with_connection(state_->connections(), [&](db::Connection& conn) -> std::size_t {
    auto& u = units_[index];
    {
      pqxx::nontransaction txn(conn.raw());
      if (!hold(u, txn, conn)) return 0;
      if (u.cursor.to_tick == 0 && !u.requeued) {
        if (ticker_.tick(txn, conn) <= u.cursor.from_tick) return 0;
      }
    }
    pqxx::work txn(conn.raw());
    const auto p = db::exec(
        txn, conn, sql("select paused from {schema}.subscriptions where name = $1"), name_);
    if (p.empty()) {
      gone_ = true;
      return 0;
    }
    if (p[0][0].as<bool>()) return 0;
    std::size_t read = 0;
    if (u.requeued) {
      for (auto& entry : parking_.claim_requeued(txn, conn, u.key)) {
        ready_.push_back({std::move(entry.event), index, entry.id, false});
        ++read;
      }
      u.requeued = false;
    }
    auto batch = runtime::read_batch(txn, conn, *state_, u.cursor, opt_.batch_size,
                                     [&] { return ticker_.newest(txn, conn); });
    resolve_aliases(txn, conn, batch.events);
    FeedPosition prev = u.cursor;
    for (std::size_t i = 0; i < batch.events.size(); ++i) {
      const auto& e = batch.events[i];
      const auto& pos = batch.positions[i];
      Pending pe{e.global_seq, before(prev, pos), pos, false, false};
      if (u.skip.erase(e.global_seq) > 0) {
        pe.acked = pe.persisted = true;
        u.pending.push_back(pe);
      } else if (def_.wants(e) && alias_ok(e)) {
        u.pending.push_back(pe);
        ready_.push_back({std::move(batch.events[i]), index, std::nullopt, false,
                          u.pending_base + u.pending.size() - 1});
      }
      prev = pos;
    }
    u.cursor = batch.next;
    for (const auto& e : batch.events) u.read_max = std::max(u.read_max, e.global_seq);
    txn.commit();
    return read + batch.events.size();
  });
}

std::size_t Subscriber::fetch_group(std::size_t index) {
  return db::with_connection(state_->connections(), [&](db::Connection& conn) -> std::size_t {
    auto& u = units_[index];
    std::int64_t newest = 0;
    {
      pqxx::nontransaction txn(conn.raw());
      if (u.exclusive) {
        if (!hold(u, txn, conn)) return 0;
      } else if (!u.row_known) {
        leases_.ensure(txn, conn, u.key, unit_start(u));
        u.row_known = true;
      }
      newest = ticker_.tick(txn, conn);
    }
    pqxx::work txn(conn.raw());
    // The group's row lock serializes the members' fetches: the in-flight bound holds.
    const auto g = db::exec(txn, conn,
                            sql("select s.paused, g.max_in_flight from {schema}.subscriptions s "
                                "join {schema}.subscription_groups g on g.subscription = s.name "
                                "where s.name = $1 and g.name = $2 for update of g"),
                            name_, group_);
    if (g.empty()) {
      gone_ = true;
      return 0;
    }
    if (g[0][0].as<bool>()) return 0;
    const auto unit_row = db::exec(txn, conn,
                                   sql("select 1 from {schema}.work_units where kind = $1 and "
                                       "name = $2 for update"),
                                   kKind, u.key.name);
    if (unit_row.empty()) {
      u.row_known = false;
      u.epoch.reset();
      return 0;
    }
    settle(txn, conn, u);
    std::int64_t room = static_cast<std::int64_t>(opt_.batch_size);
    if (!g[0][1].is_null()) {
      const auto in_flight =
          db::exec(txn, conn,
                   sql("select count(*) from {schema}.subscription_deliveries where "
                       "subscription = $1 and grp = $2 and not acked"),
                   name_, group_)[0][0]
              .as<std::int64_t>();
      room = std::min(room, g[0][1].as<std::int64_t>() - in_flight);
    }
    if (room <= 0) {
      txn.commit();
      return 0;
    }
    const auto live = live_clause("$3", "$4");
    if (u.exclusive) {
      // The previous holder's events still in its hands come first (per-stream order).
      const auto busy =
          db::exec(txn, conn,
                   sql("select 1 from {schema}.subscription_deliveries d where d.unit = $1 and not "
                       "d.acked and d.member <> $2 and d.member <> '' and " +
                       live + " limit 1"),
                   u.key.name, member_, name_, group_);
      if (!busy.empty()) {
        txn.commit();
        return 0;
      }
    }
    std::size_t read = 0;
    // Unacknowledged events of members that left or stopped heartbeating.
    const auto taken = db::exec(txn, conn,
                                sql(R"sql(
with c as (select d.global_seq from {schema}.subscription_deliveries d
           where d.unit = $1 and not d.acked and d.member <> $2 and (d.member = '' or not )sql" +
                                    live + R"sql()
           order by d.pos_from, d.pos_after limit $5 for update skip locked)
update {schema}.subscription_deliveries d set member = $2, deliveries = d.deliveries + 1,
  delivered_at = now()
from c where d.unit = $1 and d.global_seq = c.global_seq
returning d.global_seq
)sql"),
                                u.key.name, member_, name_, group_, room);
    if (!taken.empty()) {
      std::vector<std::int64_t> seqs;
      for (const auto& r : taken) seqs.push_back(r[0].as<std::int64_t>());
      const auto rows = db::exec(txn, conn,
                                 sql("select " + runtime::envelope_columns("e") +
                                     " from {schema}.events e where e.global_seq = "
                                     "any($1::bigint[]) order by e.global_seq"),
                                 subscriptions::bigint_array(seqs));
      for (auto& e : runtime::envelopes_from(rows)) {
        ready_.push_back({std::move(e), index, std::nullopt, true});
        ++read;
      }
      room -= static_cast<std::int64_t>(taken.size());
    }
    for (auto& entry : parking_.claim_requeued(txn, conn, u.key)) {
      ready_.push_back({std::move(entry.event), index, entry.id, false});
      ++read;
    }
    const auto c = db::exec(txn, conn,
                            sql("select from_tick, to_tick, after_seq from "
                                "{schema}.subscription_cursors where unit = $1"),
                            u.key.name);
    FeedPosition cursor;
    if (!c.empty()) {
      cursor = {c[0][0].as<std::int64_t>(), c[0][1].as<std::int64_t>(), c[0][2].as<std::int64_t>()};
    } else {
      const auto w = db::exec(txn, conn,
                              sql("select from_tick, to_tick, after_seq from {schema}.work_units "
                                  "where kind = $1 and name = $2"),
                              kKind, u.key.name);
      cursor = {w[0][0].as<std::int64_t>(), w[0][1].as<std::int64_t>(), w[0][2].as<std::int64_t>()};
    }
    if (room > 0 && (cursor.to_tick != 0 || newest > cursor.from_tick)) {
      // A partition takes about 1/N of what it reads: it reads N times the room it has and
      // stops (its cursor just after) at the event that fills the room.
      const auto factor = static_cast<std::int64_t>(std::max(1, group_row_->partitions));
      auto batch = runtime::read_batch(
          txn, conn, *state_, cursor,
          static_cast<std::size_t>(std::min<std::int64_t>(room * factor, 10000)),
          [&] { return ticker_.newest(txn, conn); });
      resolve_aliases(txn, conn, batch.events);
      std::vector<std::int64_t> seq, pf, pt, pa, bf, bt, ba;
      FeedPosition prev = cursor;
      FeedPosition next = batch.next;
      std::int64_t read_seq = 0;
      for (std::size_t i = 0; i < batch.events.size(); ++i) {
        auto& e = batch.events[i];
        read_seq = std::max(read_seq, e.global_seq);
        const auto& pos = batch.positions[i];
        const auto b = before(prev, pos);
        prev = pos;
        if (!def_.wants(e) || !alias_ok(e)) continue;
        if (u.partition >= 0 &&
            subscriptions::partition_of(e.stream_id, group_row_->partitions) != u.partition) {
          continue;
        }
        seq.push_back(e.global_seq);
        pf.push_back(pos.from_tick);
        pt.push_back(pos.to_tick);
        pa.push_back(pos.after_seq);
        bf.push_back(b.from_tick);
        bt.push_back(b.to_tick);
        ba.push_back(b.after_seq);
        ready_.push_back({std::move(e), index, std::nullopt, false});
        if (static_cast<std::int64_t>(seq.size()) == room) {
          next = pos;
          break;
        }
      }
      if (!seq.empty()) {
        using subscriptions::bigint_array;
        db::exec(txn, conn, sql(R"sql(
insert into {schema}.subscription_deliveries
  (unit, global_seq, subscription, grp, member, pos_from, pos_to, pos_after, prev_from, prev_to,
   prev_after)
select $1, unnest($2::bigint[]), $3, $4, $5, unnest($6::bigint[]), unnest($7::bigint[]),
       unnest($8::bigint[]), unnest($9::bigint[]), unnest($10::bigint[]), unnest($11::bigint[])
on conflict (unit, global_seq) do nothing
)sql"),
                 u.key.name, bigint_array(seq), name_, group_, member_, bigint_array(pf),
                 bigint_array(pt), bigint_array(pa), bigint_array(bf), bigint_array(bt),
                 bigint_array(ba));
      }
      db::exec(txn, conn, sql(R"sql(
insert into {schema}.subscription_cursors
  (unit, subscription, grp, from_tick, to_tick, after_seq, last_seq)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (unit) do update set from_tick = excluded.from_tick, to_tick = excluded.to_tick,
  after_seq = excluded.after_seq,
  last_seq = greatest(subscription_cursors.last_seq, excluded.last_seq)
)sql"),
               u.key.name, name_, group_, next.from_tick, next.to_tick, next.after_seq, read_seq);
      settle(txn, conn, u);
      read += batch.events.size();
    }
    txn.commit();
    return read;
  });
}

// A group unit's checkpoint: just before its lowest unacknowledged event, or its cursor when
// none is left. The acknowledged rows it passed are deleted. Caller holds the unit's row lock.
void Subscriber::settle(pqxx::transaction_base& txn, db::Connection& conn, Unit& u) {
  const auto low = db::exec(txn, conn,
                            sql("select pos_from, pos_after, prev_from, prev_to, prev_after from "
                                "{schema}.subscription_deliveries where unit = $1 and not acked "
                                "order by pos_from, pos_after limit 1"),
                            u.key.name);
  FeedPosition ckpt;
  std::int64_t last = 0;
  if (!low.empty()) {
    ckpt = {low[0][2].as<std::int64_t>(), low[0][3].as<std::int64_t>(),
            low[0][4].as<std::int64_t>()};
    db::exec(txn, conn,
             sql("delete from {schema}.subscription_deliveries where unit = $1 and acked and "
                 "(pos_from < $2 or (pos_from = $2 and pos_after < $3))"),
             u.key.name, low[0][0].as<std::int64_t>(), low[0][1].as<std::int64_t>());
  } else {
    const auto c = db::exec(txn, conn,
                            sql("select from_tick, to_tick, after_seq, last_seq from "
                                "{schema}.subscription_cursors where unit = $1"),
                            u.key.name);
    if (c.empty()) return;
    ckpt = {c[0][0].as<std::int64_t>(), c[0][1].as<std::int64_t>(), c[0][2].as<std::int64_t>()};
    last = c[0][3].as<std::int64_t>();
    db::exec(txn, conn,
             sql("delete from {schema}.subscription_deliveries where unit = $1 and acked"),
             u.key.name);
  }
  checkpoints_.advance(txn, conn, u.key, ckpt, std::max(last, ckpt.after_seq));
}

// ---- acknowledgements ----

Subscriber::Pending* Subscriber::pending_at(Unit& u, std::uint64_t at, std::int64_t seq) {
  if (at == kNoPending || at < u.pending_base || at - u.pending_base >= u.pending.size()) {
    return nullptr;
  }
  auto& p = u.pending[at - u.pending_base];
  return p.seq == seq ? &p : nullptr;
}

void Subscriber::mark_acked(std::int64_t seq) {
  const auto it = out_.find(seq);
  if (it == out_.end()) return;
  auto& u = units_[it->second.unit];
  if (it->second.parked_id) {
    u.parked_done.push_back(*it->second.parked_id);
  } else if (u.tracked) {
    u.acked.push_back(seq);
  } else if (auto* p = pending_at(u, it->second.pending, seq)) {
    p->acked = true;
  }
  if (last_auto_ == seq) last_auto_.reset();
  out_.erase(it);
}

bool Subscriber::handed_elsewhere(std::int64_t global_seq) {
  std::lock_guard lock(mu_);
  return lost_.erase(global_seq) > 0;
}

void Subscriber::ack(std::int64_t global_seq) {
  std::lock_guard lock(mu_);
  const auto it = out_.find(global_seq);
  if (it == out_.end()) return;
  auto& u = units_[it->second.unit];
  mark_acked(global_seq);
  flush_unit(u);
}

void Subscriber::ack_in(Transaction& txn, std::int64_t global_seq) {
  std::lock_guard lock(mu_);
  const auto it = out_.find(global_seq);
  if (it == out_.end()) return;
  auto& u = units_[it->second.unit];
  if (it->second.parked_id) {
    txn.exec(sql("delete from {schema}.parked where id = $1"), *it->second.parked_id);
  } else if (u.tracked) {
    // Fenced by the delivery row's member: once another member took the event over (this one
    // was taken for gone), the caller's side effects must not commit beside its own.
    const auto row = txn.exec(sql("update {schema}.subscription_deliveries set acked = true "
                                  "where unit = $1 and global_seq = $2 and member = $3 "
                                  "returning 1"),
                              u.key.name, global_seq, member_);
    if (row.empty()) {
      if (last_auto_ == global_seq) last_auto_.reset();
      out_.erase(it);
      lost_.insert(global_seq);
      throw Error(ErrorCode::kLeaseLost,
                  "subscription unit '" + u.key.name + "': event " + std::to_string(global_seq) +
                      " was handed to another member (this one missed its heartbeats); roll "
                      "this transaction back");
    }
  } else {
    const auto* p = pending_at(u, it->second.pending, global_seq);
    if (!p) return;
    // The unit's lease, checked (not locked: the receiver renews it meanwhile) in the caller's
    // transaction, so a subscriber that lost it does not commit side effects for its taker.
    if (!u.epoch || txn.exec(sql("select 1 from {schema}.work_units where kind = $1 and name = "
                                 "$2 and lease_owner = $3 and lease_epoch = $4"),
                             u.key.kind, u.key.name, member_, *u.epoch)
                        .empty()) {
      const LeaseLost lost(u.key.kind, u.key.name, u.epoch.value_or(0));
      lost_.insert(global_seq);
      forget_ungrouped(it->second.unit);  // what is in flight here is the taker's now
      u.epoch.reset();
      throw lost;
    }
    txn.exec(sql(kRecordAck), u.key.name, global_seq, name_, member_, p->pos.from_tick,
             p->pos.to_tick, p->pos.after_seq, p->prev.from_tick, p->prev.to_tick,
             p->prev.after_seq);
    u.txn_acks.emplace(global_seq, it->second.pending);
  }
  // Whether it lands is up to the caller's commit; until the next take() the event can be
  // acknowledged again (a retry after a failed commit).
  if (last_auto_ == global_seq) last_auto_.reset();
  acked_in_txn_.push_back(global_seq);
}

void Subscriber::flush() {
  for (auto& u : units_) flush_unit(u);
}

void Subscriber::flush_unit(Unit& u) {
  if (u.tracked) {
    flush_group(u);
  } else {
    flush_ungrouped(u);
  }
}

void Subscriber::flush_group(Unit& u) {
  if (u.acked.empty() && u.parked_done.empty()) return;
  db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
    const auto row = db::exec(txn, conn,
                              sql("select 1 from {schema}.work_units where kind = $1 and name = "
                                  "$2 for update"),
                              kKind, u.key.name);
    for (const auto id : u.parked_done) parking_.settle(txn, conn, id, std::nullopt);
    if (row.empty()) return;
    if (!u.acked.empty()) {
      db::exec(txn, conn,
               sql("update {schema}.subscription_deliveries set acked = true where unit = $1 and "
                   "global_seq = any($2::bigint[])"),
               u.key.name, subscriptions::bigint_array(u.acked));
    }
    settle(txn, conn, u);
  });
  u.acked.clear();
  u.parked_done.clear();
}

void Subscriber::flush_ungrouped(Unit& u) {
  if (!u.epoch) return;
  db::with_connection(state_->connections(), [&](db::Connection& conn) {
    pqxx::work txn(conn.raw());
    if (!u.txn_acks.empty()) {
      std::vector<std::int64_t> seqs;
      seqs.reserve(u.txn_acks.size());
      for (const auto& kv : u.txn_acks) seqs.push_back(kv.first);
      // Acknowledgements committed in callers' transactions since.
      for (const auto& r : db::exec(txn, conn,
                                    sql("select global_seq from {schema}.subscription_deliveries "
                                        "where unit = $1 and acked and global_seq = "
                                        "any($2::bigint[])"),
                                    u.key.name, subscriptions::bigint_array(seqs))) {
        const auto it = u.txn_acks.find(r[0].as<std::int64_t>());
        if (it == u.txn_acks.end()) continue;
        if (auto* p = pending_at(u, it->second, it->first)) p->acked = p->persisted = true;
        u.txn_acks.erase(it);
      }
      std::erase_if(u.txn_acks,
                    [&](const auto& kv) { return !pending_at(u, kv.second, kv.first); });
    }
    FeedPosition ckpt = u.cursor;
    std::size_t first = u.pending.size();
    for (std::size_t i = 0; i < u.pending.size(); ++i) {
      if (!u.pending[i].acked) {
        ckpt = u.pending[i].prev;
        first = i;
        break;
      }
    }
    bool passed_rows = false;
    std::int64_t last = first == u.pending.size() ? u.read_max : ckpt.after_seq;
    for (std::size_t i = 0; i < first; ++i) {
      passed_rows = passed_rows || u.pending[i].persisted;
      last = std::max(last, u.pending[i].seq);
    }
    std::vector<Pending*> store;
    for (std::size_t i = first; i < u.pending.size(); ++i) {
      if (u.pending[i].acked && !u.pending[i].persisted) store.push_back(&u.pending[i]);
    }
    if (ckpt == u.checkpoint && store.empty() && !passed_rows && u.parked_done.empty()) return;
    try {
      checkpoints_.write(
          txn, conn, u.key, member_, *u.epoch, opt_.lease_ttl, std::chrono::system_clock::now(),
          runtime::CheckpointWrite{ckpt, last, 0, std::nullopt, std::nullopt, false});
    } catch (const LeaseLost&) {
      txn.abort();
      forget_ungrouped(static_cast<std::size_t>(&u - units_.data()));
      u.epoch.reset();
      return;
    }
    for (const auto* p : store) {
      db::exec(txn, conn, sql(kRecordAck), u.key.name, p->seq, name_, member_, p->pos.from_tick,
               p->pos.to_tick, p->pos.after_seq, p->prev.from_tick, p->prev.to_tick,
               p->prev.after_seq);
    }
    if (passed_rows) {
      db::exec(txn, conn,
               sql("delete from {schema}.subscription_deliveries where unit = $1 and acked and "
                   "(pos_from < $2 or (pos_from = $2 and pos_after <= $3))"),
               u.key.name, ckpt.from_tick, ckpt.after_seq);
    }
    for (const auto id : u.parked_done) parking_.settle(txn, conn, id, std::nullopt);
    txn.commit();
    for (auto* p : store) p->persisted = true;
    u.pending.erase(u.pending.begin(), u.pending.begin() + static_cast<std::ptrdiff_t>(first));
    u.pending_base += first;
    u.checkpoint = ckpt;
    u.parked_done.clear();
    u.renewed = std::chrono::steady_clock::now();
  });
}

void Subscriber::park(std::int64_t seq, const EventEnvelope& e, const std::string& error,
                      int attempts) {
  const auto it = out_.find(seq);
  if (it == out_.end()) return;
  auto& u = units_[it->second.unit];
  if (it->second.parked_id) {
    // A requeued event failed again: it stays parked with one more attempt.
    const auto id = *it->second.parked_id;
    db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
      parking_.settle(txn, conn, id, error);
    });
    out_.erase(it);
    return;
  }
  db::in_transaction(state_->connections(), [&](pqxx::work& txn, db::Connection& conn) {
    parking_.park(txn, conn, u.key, e, error, attempts);
  });
  mark_acked(seq);
  flush_unit(u);
}

// ---- leaving ----

void Subscriber::close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  try {
    flush();
    db::without_transaction(state_->connections(), [&](pqxx::nontransaction& txn,
                                                       db::Connection& conn) {
      for (auto& u : units_) {
        if (u.tracked) {
          // Whatever this member did not acknowledge goes to the others at once.
          db::exec(txn, conn,
                   sql("update {schema}.subscription_deliveries set member = '' where unit = $1 "
                       "and member = $2 and not acked"),
                   u.key.name, member_);
        }
        if (u.epoch) leases_.release(txn, conn, u.key);
        u.epoch.reset();
      }
      if (!group_.empty()) {
        db::exec(txn, conn,
                 sql("delete from {schema}.subscription_members where subscription = $1 and grp "
                     "= $2 and member = $3"),
                 name_, group_, member_);
      }
    });
  } catch (...) {
    // Leaving is best effort: leases expire and members stop counting as live by themselves.
  }
  ready_.clear();
  out_.clear();
  retrying_.reset();
  listener_.reset();
  listen_conn_.reset();
}

}  // namespace detail

const std::string& SubscriptionHandle::member_id() const {
  return s_->member();
}
void SubscriptionHandle::ack(std::int64_t global_seq) {
  s_->ack(global_seq);
}
void SubscriptionHandle::ack_in(Transaction& txn, std::int64_t global_seq) {
  s_->ack_in(txn, global_seq);
}
void SubscriptionHandle::close() {
  s_->close();
}
std::optional<EventEnvelope> SubscriptionReceiver::next(std::chrono::milliseconds timeout) {
  return s_->next(timeout);
}
void SubscriptionReceiver::run(const std::function<void(const EventEnvelope&)>& handler,
                               std::stop_token stop) {
  s_->run(handler, std::move(stop));
}
RunAvailableResult SubscriptionReceiver::run_available(
    const std::function<void(const EventEnvelope&)>& handler, std::size_t max_events) {
  return s_->run_available(handler, max_events);
}

}  // namespace rillflow
