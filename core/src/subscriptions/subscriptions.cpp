// Subscription admin: definitions, groups, status, reset, parked events. Delivery lives in
// subscriber.cpp; both use the runtime units (leases, checkpoints, parking) with kind
// "subscription" (subscription_state.hpp names the units).

#include "subscriptions/subscriber.hpp"
#include "subscriptions/subscription_state.hpp"

#include "db/sql.hpp"
#include "projections/transaction_access.hpp"

#include <rillflow/error.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>

namespace rillflow {

namespace subscriptions {

void validate_name(std::string_view name, std::string_view what) {
  const auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  };
  const bool ok = !name.empty() && name.size() <= 63 &&
                  std::all_of(name.begin(), name.end(), ok_char) && ok_char(name[0]) &&
                  name[0] != '_' && name[0] != '.' && name[0] != ':' && name[0] != '-';
  if (!ok) {
    std::string shown;
    for (const char c : name.substr(0, 80)) {
      shown += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    }
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + " '" + shown +
                    "' is not valid: use 1 to 63 characters of A-Z a-z 0-9 _ . : - starting with a "
                    "letter or digit");
  }
}

std::string unit_name(const std::string& subscription, const std::string& group, int partition) {
  if (group.empty()) return subscription;
  if (partition < 0) return subscription + "/" + group;
  return subscription + "/" + group + "/" + std::to_string(partition);
}

runtime::UnitKey unit_key(const std::string& subscription, const std::string& group,
                          int partition) {
  return {kKind, unit_name(subscription, group, partition)};
}

int partition_of(const Uuid& stream, int partitions) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const auto byte : stream) {
    hash ^= byte;
    hash *= 1099511628211ull;
  }
  return partitions <= 1 ? 0 : static_cast<int>(hash % static_cast<std::uint64_t>(partitions));
}

SubscriptionFilter filter_from_json(const Json& json) {
  SubscriptionFilter f;
  const auto& o = json.as_object();
  if (const auto* t = o.if_contains("event_types")) {
    for (const auto& v : t->as_array()) f.event_types.emplace_back(v.as_string());
  }
  if (const auto* s = o.if_contains("stream_ids")) {
    for (const auto& v : s->as_array()) f.stream_ids.push_back(parse_uuid(v.as_string()));
  }
  if (const auto* a = o.if_contains("alias_prefix"); a && a->is_string()) {
    f.alias_prefix = std::string(a->as_string());
  }
  return f;
}

bool Definition::wants(const EventEnvelope& e) const {
  if (e.global_seq <= min_global_seq) return false;
  if (min_created_at && e.created_at < *min_created_at) return false;
  if (!filter.event_types.empty() && std::find(filter.event_types.begin(), filter.event_types.end(),
                                               e.type) == filter.event_types.end()) {
    return false;
  }
  if (!filter.stream_ids.empty() && std::find(filter.stream_ids.begin(), filter.stream_ids.end(),
                                              e.stream_id) == filter.stream_ids.end()) {
    return false;
  }
  return true;
}

namespace {

constexpr const char* kDefinitionColumns =
    "name, filter::text, start_from, start_tick, min_global_seq, "
    "(extract(epoch from min_created_at) * 1000000)::bigint, paused, "
    "(extract(epoch from created_at) * 1000000)::bigint";

Definition definition_from(const pqxx::row& r) {
  Definition d;
  d.name = r[0].as<std::string>();
  d.filter = filter_from_json(parse_json(r[1].as<std::string>()));
  d.start_from = r[2].as<std::string>();
  d.start_tick = r[3].as<std::int64_t>();
  d.min_global_seq = r[4].as<std::int64_t>();
  if (!r[5].is_null()) d.min_created_at = runtime::from_micros(r[5].as<std::int64_t>());
  d.paused = r[6].as<bool>();
  d.created_at = runtime::from_micros(r[7].as<std::int64_t>());
  return d;
}

}  // namespace

std::optional<Definition> load_definition(pqxx::transaction_base& txn, db::Connection& conn,
                                          const detail::StoreState& state,
                                          const std::string& name) {
  const auto r = db::exec(txn, conn,
                          state.sql(std::string("select ") + kDefinitionColumns +
                                    " from {schema}.subscriptions where name = $1"),
                          name);
  if (r.empty()) return std::nullopt;
  return definition_from(r[0]);
}

std::optional<GroupRow> load_group(pqxx::transaction_base& txn, db::Connection& conn,
                                   const detail::StoreState& state, const std::string& subscription,
                                   const std::string& group) {
  const auto r = db::exec(txn, conn,
                          state.sql("select name, partitions, max_in_flight, start_tick from "
                                    "{schema}.subscription_groups where subscription = $1 and "
                                    "name = $2"),
                          subscription, group);
  if (r.empty()) return std::nullopt;
  GroupRow g;
  g.name = r[0][0].as<std::string>();
  g.partitions = r[0][1].as<int>();
  if (!r[0][2].is_null()) g.max_in_flight = r[0][2].as<std::int64_t>();
  g.start_tick = r[0][3].as<std::int64_t>();
  return g;
}

std::string bigint_array(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

std::string uuid_array(const std::vector<Uuid>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += to_string(values[i]);
  }
  return out + "}";
}

}  // namespace subscriptions

using subscriptions::kKind;

// ---- value types ----

std::string StartFrom::to_string() const {
  switch (kind_) {
    case Kind::kBeginning:
      return "beginning";
    case Kind::kEnd:
      return "end";
    case Kind::kAfter:
      return "after " + std::to_string(seq_);
    case Kind::kTime:
      return "time " + format_timestamp(time_);
  }
  return "beginning";
}

StartFrom StartFrom::parse(std::string_view text) {
  const std::string t(text);
  if (t == "beginning") return beginning();
  if (t == "end") return end();
  if (!t.empty() && t.find_first_not_of("0123456789") == std::string::npos) {
    try {
      return after(std::stoll(t));
    } catch (const std::exception&) {
      throw Error(ErrorCode::kInvalidArgument, "start position " + t + " is out of range");
    }
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) == 6) {
    std::string rest = t.substr(static_cast<std::size_t>(n));
    long micros = 0;
    if (!rest.empty() && rest[0] == '.') {
      std::size_t i = 1;
      long scale = 100000;
      for (; i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])); ++i) {
        micros += (rest[i] - '0') * scale;
        scale /= 10;
      }
      rest = rest.substr(i);
    }
    if (rest == "Z" && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61) {
      std::tm tm{};
      tm.tm_year = y - 1900;
      tm.tm_mon = mo - 1;
      tm.tm_mday = d;
      tm.tm_hour = h;
      tm.tm_min = mi;
      tm.tm_sec = s;
      return at(std::chrono::system_clock::from_time_t(timegm(&tm)) +
                std::chrono::microseconds(micros));
    }
  }
  throw Error(ErrorCode::kInvalidArgument,
              "a start position is beginning, end, a global_seq (0 or more) or a UTC time such as "
              "2026-01-02T03:04:05Z; got '" +
                  t.substr(0, 80) + "'");
}

void validate_subscription_name(std::string_view name, std::string_view what) {
  subscriptions::validate_name(name, what);
}

runtime::UnitKey subscription_unit(const std::string& subscription, const std::string& group,
                                   int partition) {
  return subscriptions::unit_key(subscription, group, partition);
}

Json to_json(const SubscriptionFilter& f) {
  boost::json::array types, streams;
  for (const auto& t : f.event_types) types.emplace_back(t);
  for (const auto& s : f.stream_ids) streams.emplace_back(to_string(s));
  boost::json::object o{{"event_types", types}, {"stream_ids", streams}};
  o["alias_prefix"] = f.alias_prefix ? Json(*f.alias_prefix) : Json(nullptr);
  return o;
}

Json to_json(const SubscriptionInfo& i) {
  boost::json::array groups;
  for (const auto& g : i.groups) groups.emplace_back(g);
  return boost::json::object{{"name", i.name},
                             {"filter", to_json(i.filter)},
                             {"start_from", i.start_from},
                             {"paused", i.paused},
                             {"last_seq", i.last_global_seq},
                             {"head", i.head},
                             {"lag_events", i.lag_events},
                             {"groups", groups},
                             {"created_at", format_timestamp(i.created_at)}};
}

Json to_json(const GroupStatus& s) {
  boost::json::array members, parts;
  for (const auto& m : s.members) members.emplace_back(m);
  for (const auto& p : s.partition_owners) {
    parts.push_back(boost::json::object{{"partition", p.partition},
                                        {"owner", p.owner ? Json(*p.owner) : Json(nullptr)},
                                        {"last_seq", p.last_global_seq}});
  }
  boost::json::object o{{"subscription", s.subscription},
                        {"group", s.group},
                        {"last_seq", s.last_seq},
                        {"head", s.head},
                        {"lag_events", s.lag_events},
                        {"lag_seconds", s.lag_seconds},
                        {"in_flight", s.in_flight},
                        {"partitions", s.partitions},
                        {"members", members},
                        {"partition_owners", parts}};
  o["max_in_flight"] = s.max_in_flight ? Json(*s.max_in_flight) : Json(nullptr);
  return o;
}

// ---- admin ----

struct Subscriptions::Impl {
  explicit Impl(Store s)
      : store(std::move(s)),
        state(detail::StoreAccess::state(store)),
        leases(*state, "admin", std::chrono::milliseconds(30000)),
        checkpoints(*state),
        parking(*state),
        ticker(*state) {}

  Store store;
  std::shared_ptr<const detail::StoreState> state;
  runtime::Leases leases;
  runtime::Checkpoints checkpoints;
  runtime::Parking parking;
  runtime::Ticker ticker;

  std::string sql(std::string_view text) const { return state->sql(text); }
  db::Pool& pool() const { return state->connections(); }

  void require(pqxx::transaction_base& txn, db::Connection& conn, const std::string& name,
               bool lock = false) const {
    subscriptions::validate_name(name, "subscription name");
    const auto r =
        db::exec(txn, conn,
                 sql(std::string("select 1 from {schema}.subscriptions where name = $1") +
                     (lock ? " for update" : "")),
                 name);
    if (r.empty()) throw NotFound("subscription", name);
  }
  subscriptions::GroupRow require_group(pqxx::transaction_base& txn, db::Connection& conn,
                                        const std::string& name, const std::string& group) const {
    require(txn, conn, name);
    subscriptions::validate_name(group, "group name");
    auto g = subscriptions::load_group(txn, conn, *state, name, group);
    if (!g) throw NotFound("group of subscription '" + name + "'", group);
    return *g;
  }
  /// Units of the subscription (or of one group) that have a work_units row.
  std::vector<runtime::UnitKey> units(pqxx::transaction_base& txn, db::Connection& conn,
                                      const std::string& prefix, bool exact_too) const {
    std::vector<runtime::UnitKey> out;
    for (const auto& r : db::exec(txn, conn,
                                  sql("select name from {schema}.work_units where kind = $1 and "
                                      "((name = $2 and $3) or starts_with(name, $2 || '/')) "
                                      "order by name"),
                                  kKind, prefix, exact_too)) {
      out.push_back({kKind, r[0].as<std::string>()});
    }
    return out;
  }
  /// (start_tick, min_global_seq, min_created_at micros) of a start.
  struct Start {
    std::int64_t tick = 0;
    std::int64_t min_seq = 0;
    std::optional<std::int64_t> min_created;
  };
  Start start_of(const StartFrom& from) const {
    Start s;
    switch (from.kind()) {
      case StartFrom::Kind::kBeginning:
        break;
      case StartFrom::Kind::kEnd:
        s.tick =
            db::without_transaction(pool(), [&](pqxx::nontransaction& txn, db::Connection& conn) {
              return ticker.tick(txn, conn);
            });
        break;
      case StartFrom::Kind::kAfter:
        if (from.global_seq() < 0) {
          throw Error(ErrorCode::kInvalidArgument, "a start position must be 0 or more");
        }
        s.min_seq = from.global_seq();
        break;
      case StartFrom::Kind::kTime:
        s.min_created = runtime::to_micros(from.time());
        break;
    }
    return s;
  }
  SubscriptionInfo info(pqxx::transaction_base& txn, db::Connection& conn,
                        const subscriptions::Definition& d) const {
    SubscriptionInfo i;
    i.name = d.name;
    i.filter = d.filter;
    i.start_from = d.start_from;
    i.paused = d.paused;
    i.created_at = d.created_at;
    const auto r = db::exec(txn, conn, sql(R"sql(
select coalesce((select min(u.last_global_seq) from {schema}.work_units u
                 where u.kind = $1 and (u.name = $2 or starts_with(u.name, $2 || '/'))), 0),
       (select coalesce(max(global_seq), 0) from {schema}.events),
       coalesce((select string_agg(g.name, ',' order by g.name) from {schema}.subscription_groups g
                 where g.subscription = $2), '')
)sql"),
                            kKind, d.name);
    i.last_global_seq = std::max(r[0][0].as<std::int64_t>(), d.min_global_seq);
    i.head = r[0][1].as<std::int64_t>();
    i.lag_events = std::max<std::int64_t>(0, i.head - i.last_global_seq);
    const auto groups = r[0][2].as<std::string>();
    for (std::size_t at = 0; at < groups.size();) {
      const auto comma = groups.find(',', at);
      const auto end = comma == std::string::npos ? groups.size() : comma;
      i.groups.push_back(groups.substr(at, end - at));
      at = end + 1;
    }
    return i;
  }
  GroupStatus group_status(pqxx::transaction_base& txn, db::Connection& conn,
                           const std::string& name, const subscriptions::GroupRow& g) const {
    GroupStatus s;
    s.subscription = name;
    s.group = g.name;
    s.partitions = g.partitions;
    s.max_in_flight = g.max_in_flight;
    const auto prefix = subscriptions::unit_name(name, g.name, -1);
    std::int64_t low = -1;
    for (const auto& r : db::exec(txn, conn, sql(R"sql(
select name, last_global_seq, case when lease_expires_at > now() then lease_owner end
from {schema}.work_units where kind = $1 and (name = $2 or starts_with(name, $2 || '/'))
order by name
)sql"),
                                  kKind, prefix)) {
      const auto unit = r[0].as<std::string>();
      const auto seq = r[1].as<std::int64_t>();
      low = low < 0 ? seq : std::min(low, seq);
      if (unit.size() > prefix.size()) {
        GroupPartition p;
        p.partition = std::atoi(unit.c_str() + prefix.size() + 1);
        if (!r[2].is_null()) p.owner = r[2].as<std::string>();
        p.last_global_seq = seq;
        if (p.partition < g.partitions) s.partition_owners.push_back(p);
      }
    }
    for (int p = 0; p < g.partitions; ++p) {  // partitions no member has started yet
      if (std::none_of(s.partition_owners.begin(), s.partition_owners.end(),
                       [&](const GroupPartition& o) { return o.partition == p; })) {
        GroupPartition missing;
        missing.partition = p;
        s.partition_owners.push_back(missing);
      }
    }
    std::sort(s.partition_owners.begin(), s.partition_owners.end(),
              [](const auto& a, const auto& b) { return a.partition < b.partition; });
    const auto def = subscriptions::load_definition(txn, conn, *state, name);
    s.last_seq = std::max<std::int64_t>(low < 0 ? 0 : low, def ? def->min_global_seq : 0);
    const auto r = db::exec(txn, conn, sql(R"sql(
select (select coalesce(max(global_seq), 0) from {schema}.events),
       extract(epoch from now() - (select e.created_at from {schema}.events e
                                   where e.global_seq > $3 order by e.global_seq limit 1)),
       (select count(*) from {schema}.subscription_deliveries
        where subscription = $1 and grp = $2 and not acked),
       coalesce((select string_agg(m.member, ',' order by m.member)
                 from {schema}.subscription_members m
                 where m.subscription = $1 and m.grp = $2
                   and m.heartbeat_at > now() - m.ttl_ms * interval '1 millisecond'), '')
)sql"),
                            name, g.name, s.last_seq);
    s.head = r[0][0].as<std::int64_t>();
    s.lag_events = std::max<std::int64_t>(0, s.head - s.last_seq);
    s.lag_seconds = r[0][1].is_null() ? 0.0 : std::max(0.0, r[0][1].as<double>());
    s.in_flight = r[0][2].as<std::int64_t>();
    const auto members = r[0][3].as<std::string>();
    for (std::size_t at = 0; at < members.size();) {
      const auto comma = members.find(',', at);
      const auto end = comma == std::string::npos ? members.size() : comma;
      s.members.push_back(members.substr(at, end - at));
      at = end + 1;
    }
    return s;
  }
};

Subscriptions::Subscriptions(Store store) : impl_(std::make_shared<Impl>(std::move(store))) {}

Subscriptions Store::subscriptions() const {
  return Subscriptions(*this);
}

SubscriptionInfo Subscriptions::create(const std::string& name, const SubscriptionFilter& filter,
                                       const SubscriptionOptions& options) {
  subscriptions::validate_name(name, "subscription name");
  if (options.group) subscriptions::validate_name(*options.group, "group name");
  if (filter.alias_prefix && filter.alias_prefix->empty()) {
    throw Error(ErrorCode::kInvalidArgument, "an alias prefix must not be empty");
  }
  if (options.partitions < 0 || options.partitions > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "partitions must be 0 to 1024");
  }
  if (options.max_in_flight && *options.max_in_flight < 1) {
    throw Error(ErrorCode::kInvalidArgument, "max_in_flight must be at least 1");
  }
  // Only a new definition needs its start (an "end" start creates a tick).
  auto existing = get(name);
  if (existing && !(existing->filter == filter)) {
    throw Error(ErrorCode::kInvalidArgument,
                "subscription '" + name + "' exists with another filter (delete it first)");
  }
  const auto start = existing ? Impl::Start{} : impl_->start_of(options.start_from);
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    db::exec(txn, conn,
             impl_->sql("insert into {schema}.subscriptions (name, filter, start_from, "
                        "start_tick, min_global_seq, min_created_at) values ($1, $2::jsonb, $3, "
                        "$4, $5, to_timestamp($6::double precision / 1000000)) on conflict (name) "
                        "do nothing"),
             name, boost::json::serialize(to_json(filter)), options.start_from.to_string(),
             start.tick, start.min_seq, start.min_created);
    auto def = subscriptions::load_definition(txn, conn, *impl_->state, name);
    if (!(def->filter == filter)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "subscription '" + name + "' exists with another filter (delete it first)");
    }
    if (options.group) {
      db::exec(txn, conn,
               impl_->sql("insert into {schema}.subscription_groups (subscription, name, "
                          "partitions, max_in_flight, start_tick) values ($1, $2, $3, $4, $5) "
                          "on conflict do nothing"),
               name, *options.group, options.partitions, options.max_in_flight, def->start_tick);
    }
    return impl_->info(txn, conn, *def);
  });
}

std::vector<SubscriptionInfo> Subscriptions::list() const {
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    std::vector<SubscriptionInfo> out;
    for (const auto& r :
         db::exec(txn, conn, impl_->sql("select name from {schema}.subscriptions order by name"))) {
      if (auto d =
              subscriptions::load_definition(txn, conn, *impl_->state, r[0].as<std::string>())) {
        out.push_back(impl_->info(txn, conn, *d));
      }
    }
    return out;
  });
}

std::optional<SubscriptionInfo> Subscriptions::get(const std::string& name) const {
  subscriptions::validate_name(name, "subscription name");
  return db::in_transaction(
      impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) -> std::optional<SubscriptionInfo> {
        auto d = subscriptions::load_definition(txn, conn, *impl_->state, name);
        if (!d) return std::nullopt;
        return impl_->info(txn, conn, *d);
      });
}

void Subscriptions::remove(const std::string& name) {
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name, true);
    for (const auto& key : impl_->units(txn, conn, name, true)) {
      impl_->parking.clear(txn, conn, key);
    }
    for (const char* table :
         {"subscription_members", "subscription_cursors", "subscription_deliveries"}) {
      db::exec(
          txn, conn,
          impl_->sql(std::string("delete from {schema}.") + table + " where subscription = $1"),
          name);
    }
    db::exec(txn, conn,
             impl_->sql("delete from {schema}.work_units where kind = $1 and (name = $2 or "
                        "starts_with(name, $2 || '/'))"),
             kKind, name);
    db::exec(txn, conn, impl_->sql("delete from {schema}.subscriptions where name = $1"), name);
  });
}

void Subscriptions::pause(const std::string& name) {
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name, true);
    db::exec(txn, conn,
             impl_->sql("update {schema}.subscriptions set paused = true where name = $1"), name);
  });
}

void Subscriptions::resume(const std::string& name) {
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name, true);
    db::exec(txn, conn,
             impl_->sql("update {schema}.subscriptions set paused = false where name = $1"), name);
  });
}

void Subscriptions::reset(const std::string& name, const StartFrom& from) {
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name);
  });
  const auto start = impl_->start_of(from);
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name, true);
    db::exec(txn, conn,
             impl_->sql("update {schema}.subscriptions set start_from = $2, start_tick = $3, "
                        "min_global_seq = $4, min_created_at = to_timestamp($5::double precision "
                        "/ 1000000) where name = $1"),
             name, from.to_string(), start.tick, start.min_seq, start.min_created);
    db::exec(txn, conn,
             impl_->sql("update {schema}.subscription_groups set start_tick = $2 where "
                        "subscription = $1"),
             name, start.tick);
    for (const auto& key : impl_->units(txn, conn, name, true)) {
      impl_->checkpoints.reset(txn, conn, key, FeedPosition{start.tick, 0, 0}, start.min_seq);
      impl_->leases.revoke(txn, conn, key);
    }
    for (const char* table : {"subscription_cursors", "subscription_deliveries"}) {
      db::exec(
          txn, conn,
          impl_->sql(std::string("delete from {schema}.") + table + " where subscription = $1"),
          name);
    }
  });
}

std::vector<GroupStatus> Subscriptions::groups(const std::string& name) const {
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name);
    std::vector<GroupStatus> out;
    for (const auto& r : db::exec(txn, conn,
                                  impl_->sql("select name from {schema}.subscription_groups "
                                             "where subscription = $1 order by name"),
                                  name)) {
      auto g = subscriptions::load_group(txn, conn, *impl_->state, name, r[0].as<std::string>());
      out.push_back(impl_->group_status(txn, conn, name, *g));
    }
    return out;
  });
}

GroupStatus Subscriptions::group_status(const std::string& name, const std::string& group) const {
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    const auto g = impl_->require_group(txn, conn, name, group);
    return impl_->group_status(txn, conn, name, g);
  });
}

void Subscriptions::set_group_max_in_flight(const std::string& name, const std::string& group,
                                            std::optional<std::int64_t> value) {
  if (value && *value < 1) {
    throw Error(ErrorCode::kInvalidArgument, "max_in_flight must be at least 1");
  }
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require_group(txn, conn, name, group);
    db::exec(txn, conn,
             impl_->sql("update {schema}.subscription_groups set max_in_flight = $3 where "
                        "subscription = $1 and name = $2"),
             name, group, value);
  });
}

void Subscriptions::set_group_partitions(const std::string& name, const std::string& group,
                                         int partitions) {
  if (partitions < 0 || partitions > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "partitions must be 0 to 1024");
  }
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name);
    subscriptions::validate_name(group, "group name");
    const auto locked = db::exec(txn, conn,
                                 impl_->sql("select partitions, start_tick from "
                                            "{schema}.subscription_groups where subscription = $1 "
                                            "and name = $2 for update"),
                                 name, group);
    if (locked.empty()) throw NotFound("group of subscription '" + name + "'", group);
    const int old_partitions = locked[0][0].as<int>();
    if (old_partitions == partitions) return;
    // Every new unit starts where the least advanced old one stands (a whole tick batch back,
    // so no event it had not acknowledged is skipped); a partition that never ran stands at
    // the group's start.
    const auto prefix = subscriptions::unit_name(name, group, -1);
    const auto units = impl_->units(txn, conn, prefix, true);
    std::int64_t start = locked[0][1].as<std::int64_t>();
    const std::size_t expected = old_partitions == 0 ? 1 : static_cast<std::size_t>(old_partitions);
    if (units.size() >= expected) {
      const auto r = db::exec(txn, conn,
                              impl_->sql("select min(from_tick) from {schema}.work_units where "
                                         "kind = $1 and (name = $2 or starts_with(name, $2 || "
                                         "'/'))"),
                              kKind, prefix);
      if (!r[0][0].is_null()) start = r[0][0].as<std::int64_t>();
    }
    const auto first = subscriptions::unit_name(name, group, partitions == 0 ? -1 : 0);
    db::exec(txn, conn,
             impl_->sql("update {schema}.parked set name = $3 where kind = $1 and (name = $2 or "
                        "starts_with(name, $2 || '/'))"),
             kKind, prefix, first);
    db::exec(txn, conn,
             impl_->sql("delete from {schema}.work_units where kind = $1 and (name = $2 or "
                        "starts_with(name, $2 || '/'))"),
             kKind, prefix);
    for (const char* table : {"subscription_cursors", "subscription_deliveries"}) {
      db::exec(txn, conn,
               impl_->sql(std::string("delete from {schema}.") + table +
                          " where subscription = $1 and grp = $2"),
               name, group);
    }
    db::exec(txn, conn,
             impl_->sql("update {schema}.subscription_groups set partitions = $3, start_tick = $4 "
                        "where subscription = $1 and name = $2"),
             name, group, partitions, start);
  });
}

std::vector<DlqEntry> Subscriptions::parked(const std::string& name, std::size_t limit) const {
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name);
    std::vector<DlqEntry> out;
    for (const auto& key : impl_->units(txn, conn, name, true)) {
      auto part = impl_->parking.list(txn, conn, key, limit);
      out.insert(out.end(), part.begin(), part.end());
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    if (out.size() > limit) out.resize(limit);
    return out;
  });
}

bool Subscriptions::requeue_parked(const std::string& name, std::int64_t id) {
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name);
    for (const auto& key : impl_->units(txn, conn, name, true)) {
      if (impl_->parking.requeue(txn, conn, key, id)) return true;
    }
    return false;
  });
}

bool Subscriptions::delete_parked(const std::string& name, std::int64_t id) {
  return db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    impl_->require(txn, conn, name);
    for (const auto& key : impl_->units(txn, conn, name, true)) {
      if (impl_->parking.remove(txn, conn, key, id)) return true;
    }
    return false;
  });
}

void Subscriptions::in_transaction(const std::function<void(Transaction&)>& body) const {
  db::in_transaction(impl_->pool(), [&](pqxx::work& txn, db::Connection& conn) {
    auto t = projections::wrap(txn, conn, impl_->state->options.schema);
    body(t);
  });
}

std::pair<SubscriptionHandle, SubscriptionReceiver> Subscriptions::subscribe(
    const std::string& name, const SubscriptionFilter& filter, const SubscriptionOptions& options) {
  create(name, filter, options);
  auto s = std::make_shared<detail::Subscriber>(impl_->state, name, options);
  return {SubscriptionHandle(s), SubscriptionReceiver(s)};
}

}  // namespace rillflow
