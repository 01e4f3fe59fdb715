#include "config/config.hpp"

#include <rillflow/error.hpp>
#include <rillflow/events/notify.hpp>
#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/schema/schema_manager.hpp>
#include <rillflow/snapshots/snapshotter.hpp>
#include <rillflow/store.hpp>
#include <rillflow/tenants/tenant_registry.hpp>
#include <rillflow/uuid.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <sstream>

namespace rillflow::config {

namespace {

// ---- typed reads with errors that name the key and the value ------------------------------

std::string at(const std::string& where, const YAML::Node& node) {
  return where + " (line " + std::to_string(node.Mark().line + 1) + ")";
}

std::string shown(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar().substr(0, 80) + "'";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "nothing";
}

std::string read_string(const YAML::Node& node, const std::string& where) {
  if (!node.IsScalar()) throw ConfigError(at(where, node), "expected a string, got " + shown(node));
  return node.Scalar();
}

std::int64_t read_int(const YAML::Node& node, const std::string& where, std::int64_t min,
                      std::int64_t max) {
  const auto text = node.IsScalar() ? node.Scalar() : std::string();
  std::size_t used = 0;
  std::int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (!node.IsScalar() || used != text.size() || text.empty()) {
    throw ConfigError(at(where, node), "expected an integer, got " + shown(node));
  }
  if (value < min || value > max) {
    throw ConfigError(at(where, node), "must be between " + std::to_string(min) + " and " +
                                           std::to_string(max) + ", got " + text);
  }
  return value;
}

bool read_bool(const YAML::Node& node, const std::string& where) {
  const auto text = node.IsScalar() ? node.Scalar() : std::string();
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  throw ConfigError(at(where, node), "expected true or false, got " + shown(node));
}

std::string read_choice(const YAML::Node& node, const std::string& where,
                        std::initializer_list<std::string_view> choices) {
  const auto value = read_string(node, where);
  for (const auto c : choices) {
    if (value == c) return value;
  }
  std::string list;
  for (const auto c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
  throw ConfigError(at(where, node), "must be one of " + list + ", got '" + value + "'");
}

std::vector<std::string> read_string_list(const YAML::Node& node, const std::string& where) {
  if (!node.IsSequence())
    throw ConfigError(at(where, node), "expected a list of strings, got " + shown(node));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < node.size(); ++i) {
    out.push_back(read_string(node[i], where + "[" + std::to_string(i) + "]"));
    if (out.back().empty()) throw ConfigError(at(where, node), "entries must not be empty");
  }
  return out;
}

Json to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    boost::json::object out;
    for (const auto& kv : node) out[kv.first.as<std::string>()] = to_json(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    boost::json::array out;
    for (const auto& item : node) out.push_back(to_json(item));
    return out;
  }
  if (!node.IsScalar() || node.IsNull()) return nullptr;
  const auto& text = node.Scalar();
  if (node.Tag() == "!") return Json(text);  // quoted: always a string
  if (text == "true") return true;
  if (text == "false") return false;
  boost::system::error_code ec;
  auto number = boost::json::parse(text, ec);
  if (!ec && number.is_number()) return number;
  return Json(text);
}

// ---- the key tables --------------------------------------------------------------------------

template <class T>
struct Key {
  std::string_view path;  // relative to the table's root
  std::string_view type;
  std::string default_value;  // a literal, or the core option's own default (text_of)
  bool reloadable;
  std::string_view description;
  void (*set)(T& out, const YAML::Node& node, const std::string& where);
  /// Copies this key's value from `from` (a reload applies the reloadable keys this way) and
  /// compares it (a reload reports the restart-only keys that changed). Null in the projection
  /// item table: the whole `projections` list is one reloadable key.
  void (*copy)(T& to, const T& from) = nullptr;
  bool (*same)(const T& a, const T& b) = nullptr;
};

// The accessors of a key stored at `member` of Config.
#define RILLFLOW_CONFIG_FIELD(member)                              \
  [](Config& to, const Config& from) { to.member = from.member; }, \
      [](const Config& a, const Config& b) { return a.member == b.member; }

constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;

// The default of a key that sets a core option is that option's own default, so the library
// and the daemon cannot drift apart.
std::string text_of(std::integral auto value) {
  return std::to_string(value);
}
std::string text_of(std::chrono::milliseconds value) {
  return std::to_string(value.count());
}
const ProjectionOptions kProjectionDefaults{};
const SnapshotterConfig kSnapshotterDefaults{};
const StoreOptions kStoreDefaults{};
const SubscriptionOptions kSubscriptionDefaults{};

void parse_projections(Config& c, const YAML::Node& node, const std::string& where);

const Key<ProjectionConfig> kProjectionKeys[] = {
    {"name", "string", "(required)", true,
     "Unique projection name; its checkpoint and lease are stored under it.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.name = read_string(n, w);
     },
     nullptr, nullptr},
    {"plugin", "path", "(required)", true,
     "Shared library exporting the projection (see the plugin ABI). A relative path is relative "
     "to the config file's folder.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.plugin = read_string(n, w);
     },
     nullptr, nullptr},
    {"event_types", "list of strings", "[] (all)", true,
     "Only these event types reach the handler; others still advance the checkpoint.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.event_types = read_string_list(n, w);
     },
     nullptr, nullptr},
    {"batch_size", "integer", text_of(kProjectionDefaults.batch_size), true,
     "Events per transaction (1-100000).",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.batch_size = read_int(n, w, 1, 100000);
     },
     nullptr, nullptr},
    {"retry.max_attempts", "integer", text_of(kProjectionDefaults.max_attempts), true,
     "Attempts per failing event before on_failure applies (1-1000).",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.retry.max_attempts = read_int(n, w, 1, 1000);
     },
     nullptr, nullptr},
    {"retry.base_delay_ms", "integer", text_of(kProjectionDefaults.retry_base_delay), true,
     "First retry delay; doubled per attempt.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.retry.base_delay_ms = read_int(n, w, 1, kMaxMs);
     },
     nullptr, nullptr},
    {"retry.max_delay_ms", "integer", text_of(kProjectionDefaults.retry_max_delay), true,
     "Upper bound of the retry delay.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.retry.max_delay_ms = read_int(n, w, 1, kMaxMs);
     },
     nullptr, nullptr},
    {"on_failure", "dead_letter | stop", "dead_letter", true,
     "After the last attempt: park the event in the DLQ and move on, or stop the projection until "
     "resumed.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       p.on_failure = read_choice(n, w, {"dead_letter", "stop"});
     },
     nullptr, nullptr},
    {"settings", "map", "{}", true, "Free-form settings handed to the plugin's factory as JSON.",
     [](ProjectionConfig& p, const YAML::Node& n, const std::string& w) {
       if (!n.IsMap()) throw ConfigError(at(w, n), "expected a map, got " + shown(n));
       p.settings = to_json(n);
     },
     nullptr, nullptr},
};

void parse_snapshotters(Config& c, const YAML::Node& node, const std::string& where);

const Key<SnapshotterEntry> kSnapshotterKeys[] = {
    {"name", "string", "(required)", true,
     "Unique snapshotter name; its lease is the work unit ('snapshotter', name).",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       s.name = read_string(n, w);
     }},
    {"plugin", "path", "(required)", true,
     "Shared library exporting the aggregate folder (RILLFLOW_FOLDER_PLUGIN). A relative path is "
     "relative to the config file's folder.",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       s.plugin = read_string(n, w);
     }},
    {"threshold", "integer", text_of(kSnapshotterDefaults.threshold_events), true,
     "A stream is compacted once this many events came after its last snapshot (1-10000000).",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       s.threshold = read_int(n, w, 1, 10000000);
     }},
    {"batch", "integer", text_of(kSnapshotterDefaults.batch_size), true,
     "Streams compacted per round (1-100000).",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       s.batch = read_int(n, w, 1, 100000);
     }},
    {"interval_ms", "integer", "10000", true,
     "rillflowd: pause between runs of this snapshotter (100 ms - 24 h).",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       s.interval_ms = read_int(n, w, 100, kMaxMs);
     }},
    {"stream_prefix", "string", "(all streams)", true,
     "Only streams whose alias starts with this, e.g. 'orders:'.",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       s.stream_prefix = read_string(n, w);
     }},
    {"settings", "map", "{}", true, "Free-form settings handed to the folder's factory as JSON.",
     [](SnapshotterEntry& s, const YAML::Node& n, const std::string& w) {
       if (!n.IsMap()) throw ConfigError(at(w, n), "expected a map, got " + shown(n));
       s.settings = to_json(n);
     }},
};

void parse_subscriptions(Config& c, const YAML::Node& node, const std::string& where);

// Wraps a core validation (kInvalidArgument) into a ConfigError naming the key.
template <class Fn>
void checked(const YAML::Node& n, const std::string& w, Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    throw ConfigError(at(w, n), e.what());
  }
}

const Key<SubscriptionEntry> kSubscriptionKeys[] = {
    {"name", "string", "(required)", true,
     "Subscription name (1-63 characters of A-Z a-z 0-9 _ . : -, starting with a letter or "
     "digit). Created with this filter when missing; an existing one must have the same filter.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.name = read_string(n, w);
       checked(n, w, [&] { validate_subscription_name(s.name, "subscription name"); });
     }},
    {"plugin", "path", "(required)", true,
     "Shared library exporting the handler (RILLFLOW_SUBSCRIPTION_PLUGIN). A relative path is "
     "relative to the config file's folder.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.plugin = read_string(n, w);
     }},
    {"filter.event_types", "list of strings", "[] (all)", true,
     "Deliver only these event types (used when the subscription is created).",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.event_types = read_string_list(n, w);
     }},
    {"filter.stream_ids", "list of UUIDs", "[] (all)", true,
     "Deliver only events of these streams (used when the subscription is created).",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.stream_ids = read_string_list(n, w);
       for (const auto& id : s.stream_ids) checked(n, w, [&] { (void)parse_uuid(id); });
     }},
    {"filter.stream_prefix", "string", "(all streams)", true,
     "Deliver only streams whose alias starts with this, e.g. 'orders:' (used when the "
     "subscription is created).",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.stream_prefix = read_string(n, w);
       if (s.stream_prefix.empty()) throw ConfigError(at(w, n), "must not be empty");
     }},
    {"start_from", "beginning | end | global_seq | UTC time", "beginning", true,
     "Where a new subscription (and a new group) starts: every event, only new ones, events "
     "after a global_seq, or events created at or after a time such as 2026-01-02T03:04:05Z.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.start_from = read_string(n, w);
       checked(n, w, [&] { (void)StartFrom::parse(s.start_from); });
     }},
    {"group", "string", "(none)", true,
     "Consumer group the daemons join. Without one the subscription is a single unit run by one "
     "daemon at a time.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.group = read_string(n, w);
       checked(n, w, [&] { validate_subscription_name(s.group, "group name"); });
     }},
    {"partitions", "integer", "0", true,
     "Group only, used when the group is created: 0 = one shared unit; N = N partitions by hash "
     "of stream id, each a unit that membership assigns to one daemon (per-stream order holds). "
     "0-1024; change a stored group with `rillflow subscriptions set-group-partitions`.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.partitions = read_int(n, w, 0, 1024);
     }},
    {"max_in_flight", "integer", "(unbounded)", true,
     "Group only, used when the group is created: delivered-but-unacknowledged events per group "
     "(1-10000000); delivery pauses at the bound.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.max_in_flight = read_int(n, w, 1, 10000000);
     }},
    {"ack", "after_handler | in_transaction", "after_handler", true,
     "after_handler: the handler's transaction commits, then the event is acknowledged (at least "
     "once); in_transaction: the acknowledgement is written in the handler's transaction (its "
     "side effects and the acknowledgement commit together: exactly once).",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.ack = read_choice(n, w, {"after_handler", "in_transaction"});
     }},
    {"batch_size", "integer", text_of(kSubscriptionDefaults.batch_size), true,
     "Events fetched per read (1-100000).",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.batch_size = read_int(n, w, 1, 100000);
     }},
    {"retry.max_attempts", "integer", text_of(kSubscriptionDefaults.max_attempts), true,
     "Attempts per failing event before on_failure applies (1-1000).",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.retry.max_attempts = read_int(n, w, 1, 1000);
     }},
    {"retry.base_delay_ms", "integer", text_of(kSubscriptionDefaults.retry_base_delay), true,
     "First retry delay; doubled per attempt. Other events of the unit wait meanwhile.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.retry.base_delay_ms = read_int(n, w, 1, kMaxMs);
     }},
    {"retry.max_delay_ms", "integer", text_of(kSubscriptionDefaults.retry_max_delay), true,
     "Upper bound of the retry delay.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.retry.max_delay_ms = read_int(n, w, 1, kMaxMs);
     }},
    {"on_failure", "dead_letter | stop", "dead_letter", true,
     "After the last attempt: park the event (`rillflow subscriptions parked-list | "
     "parked-requeue | parked-delete`) and go on, or stop the unit until a reload.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       s.on_failure = read_choice(n, w, {"dead_letter", "stop"});
     }},
    {"settings", "map", "{}", true, "Free-form settings handed to the handler's factory as JSON.",
     [](SubscriptionEntry& s, const YAML::Node& n, const std::string& w) {
       if (!n.IsMap()) throw ConfigError(at(w, n), "expected a map, got " + shown(n));
       s.settings = to_json(n);
     }},
};

const Key<Config> kKeys[] = {
    {"database.url_env", "string", "DATABASE_URL", false,
     "Environment variable holding the PostgreSQL URL (never logged).",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.url_env = read_string(n, w);
     },
     RILLFLOW_CONFIG_FIELD(database.url_env)},

    {"database.url_file", "path", "(none)", false,
     "File holding the URL (e.g. a mounted secret); used when the variable is unset.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.url_file = read_string(n, w);
     },
     RILLFLOW_CONFIG_FIELD(database.url_file)},

    {"database.require_url", "boolean", "false", false,
     "Fail instead of starting an embedded PostgreSQL when no URL is found.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.require_url = read_bool(n, w);
     },
     RILLFLOW_CONFIG_FIELD(database.require_url)},

    {"database.max_connections", "integer", text_of(kStoreDefaults.max_connections), false,
     "Connection pool size (1-1000).",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.max_connections = read_int(n, w, 1, 1000);
     },
     RILLFLOW_CONFIG_FIELD(database.max_connections)},

    {"database.prepared_statements", "auto | on | off", "auto", false,
     "Named prepared statements. off: every statement goes unnamed with its parameters (works "
     "behind any pooler, e.g. PgBouncer pool_mode=transaction, RDS Proxy); auto: on until a "
     "pooler is seen, then off (logged once); on: always.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.prepared_statements = read_choice(n, w, {"auto", "on", "off"});
     },
     RILLFLOW_CONFIG_FIELD(database.prepared_statements)},

    {"database.listen_url_env", "string", "(none)", false,
     "Environment variable holding a direct PostgreSQL URL (not through a transaction pooler) "
     "for the LISTEN connection; never logged.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.listen_url_env = read_string(n, w);
     },
     RILLFLOW_CONFIG_FIELD(database.listen_url_env)},

    {"database.listen_url_file", "path", "(none)", false,
     "File holding the direct URL for LISTEN; used when listen_url_env is not set.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.database.listen_url_file = read_string(n, w);
     },
     RILLFLOW_CONFIG_FIELD(database.listen_url_file)},

    {"schema", "string", "public", false, "Schema holding Rillflow's tables (a-z, 0-9, _).",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.schema = read_string(n, w);
       try {
         validate_identifier(c.schema, "schema name");
       } catch (const Error& e) {
         throw ConfigError(at(w, n), e.what());
       }
     },
     RILLFLOW_CONFIG_FIELD(schema)},

    {"http.bind", "string", "0.0.0.0", false,
     "Address the HTTP server (health, metrics, status) listens on.",
     [](Config& c, const YAML::Node& n, const std::string& w) { c.http.bind = read_string(n, w); },
     RILLFLOW_CONFIG_FIELD(http.bind)},

    {"http.port", "integer", "8080", false, "HTTP port (0 picks a free port; it is logged).",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.http.port = read_int(n, w, 0, 65535);
     },
     RILLFLOW_CONFIG_FIELD(http.port)},

    {"logging.level", "trace | debug | info | warn | error", "info", true,
     "Least severe level logged.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.logging.level = read_choice(n, w, {"trace", "debug", "info", "warn", "error"});
     },
     RILLFLOW_CONFIG_FIELD(logging.level)},

    {"logging.format", "text | json", "text", false,
     "text for terminals and journald, json for one JSON object per line.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.logging.format = read_choice(n, w, {"text", "json"});
     },
     RILLFLOW_CONFIG_FIELD(logging.format)},

    {"daemon.drain_deadline_ms", "integer", "30000", false,
     "On SIGTERM: time allowed to finish batches and release leases.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.daemon.drain_deadline_ms = read_int(n, w, 0, kMaxMs);
     },
     RILLFLOW_CONFIG_FIELD(daemon.drain_deadline_ms)},

    {"daemon.lease_ttl_ms", "integer", "30000", false,
     "Lease lifetime; a dead daemon's projections are taken over after it.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.daemon.lease_ttl_ms = read_int(n, w, 100, kMaxMs);
     },
     RILLFLOW_CONFIG_FIELD(daemon.lease_ttl_ms)},

    {"daemon.poll_interval_ms", "integer", "1000", true,
     "Polling fallback interval (also used while NOTIFY is off).",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.daemon.poll_interval_ms = read_int(n, w, 10, kMaxMs);
     },
     RILLFLOW_CONFIG_FIELD(daemon.poll_interval_ms)},

    {"daemon.notify", "boolean", "true", false,
     "Wake up on LISTEN/NOTIFY instead of waiting for the next poll.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.daemon.notify = read_bool(n, w);
     },
     RILLFLOW_CONFIG_FIELD(daemon.notify)},

    {"daemon.notify_channel", "string", std::string(notify::kDefaultChannel), false,
     "NOTIFY channel appends signal on.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.daemon.notify_channel = read_string(n, w);
       try {
         validate_identifier(c.daemon.notify_channel, "notify channel");
       } catch (const Error& e) {
         throw ConfigError(at(w, n), e.what());
       }
     },
     RILLFLOW_CONFIG_FIELD(daemon.notify_channel)},

    {"projections", "list", "[]", true,
     "The projection registry: one entry per projection (keys below).", &parse_projections,
     RILLFLOW_CONFIG_FIELD(projections)},
    {"snapshotters", "list", "[]", true,
     "Background compaction: one entry per aggregate folder (keys below); run by rillflowd (each "
     "on one node at a time) and by `rillflow snapshots compact-once | run-until-idle`.",
     &parse_snapshotters, RILLFLOW_CONFIG_FIELD(snapshotters)},
    {"subscriptions", "list", "[]", true,
     "Subscriptions delivered to handler plugins (keys below): each unit (the subscription, or "
     "one partition of its group) runs on one daemon at a time; SIGHUP adds, removes and "
     "changes them.",
     &parse_subscriptions, RILLFLOW_CONFIG_FIELD(subscriptions)},
    {"tenants", "all | list of tenant names", "(none: the base schema only)", true,
     "Schema-per-tenant (docs/tenants.md): run every projection, subscription and snapshotter "
     "once per tenant, in the tenant's schema, with that tenant's checkpoints and leases. `all`: "
     "every tenant in the registry of `schema`, a new one picked up within "
     "daemon.poll_interval_ms; a list: those tenants (one not provisioned yet makes the daemon "
     "unready, saying which). Unset: the units run in `schema` itself.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.tenants = TenantsConfig{};
       c.tenants.enabled = true;
       if (n.IsScalar()) {
         if (read_string(n, w) != "all")
           throw ConfigError(at(w, n), "expected all or a list of tenant names, got " + shown(n));
         c.tenants.all = true;
         return;
       }
       c.tenants.names = read_string_list(n, w);
       std::set<std::string> seen;
       for (const auto& name : c.tenants.names) {
         try {
           validate_tenant_name(name);
         } catch (const Error& e) {
           throw ConfigError(at(w, n), e.what());
         }
         if (!seen.insert(name).second)
           throw ConfigError(at(w, n), "tenant '" + name + "' is listed twice");
       }
       std::sort(c.tenants.names.begin(), c.tenants.names.end());
     },
     RILLFLOW_CONFIG_FIELD(tenants)},
    {"metrics.tenant_label", "boolean", "true", false,
     "Label every per-unit series with `tenant` (with `tenants:` set). Each tenant then adds "
     "its own series per unit (about 10 per projection): switch it off to keep the series count "
     "flat; counters then sum over tenants and gauges show the largest value.",
     [](Config& c, const YAML::Node& n, const std::string& w) {
       c.metrics.tenant_label = read_bool(n, w);
     },
     RILLFLOW_CONFIG_FIELD(metrics.tenant_label)},
};

#undef RILLFLOW_CONFIG_FIELD

template <class T>
const Key<T>* find_key(std::span<const Key<T>> table, const std::string& path) {
  for (const auto& k : table) {
    if (k.path == path) return &k;
  }
  return nullptr;
}

template <class T>
bool is_section(std::span<const Key<T>> table, const std::string& path) {
  return std::any_of(table.begin(), table.end(),
                     [&](const Key<T>& k) { return k.path.starts_with(path + "."); });
}

template <class T>
void walk(const YAML::Node& node, std::span<const Key<T>> table, const std::string& prefix,
          const std::string& display, T& out) {
  if (!node.IsMap()) {
    throw ConfigError(
        display.empty() ? "(top level)" : at(display.substr(0, display.size() - 1), node),
        "expected a map, got " + shown(node));
  }
  for (const auto& kv : node) {
    const auto name = kv.first.as<std::string>();
    const auto path = prefix + name;
    const auto where = display + name;
    if (const auto* key = find_key(table, path)) {
      key->set(out, kv.second, where);
    } else if (is_section(table, path)) {
      walk(kv.second, table, path + ".", where + ".", out);
    } else {
      std::string known;
      for (const auto& k : table) {
        if (k.path.starts_with(prefix)) {
          auto rest = k.path.substr(prefix.size());
          rest = rest.substr(0, rest.find('.'));
          if (known.find(std::string(rest) + ",") == std::string::npos)
            known += std::string(rest) + ", ";
        }
      }
      if (known.size() > 2) known.resize(known.size() - 2);
      throw ConfigError(at(where, kv.first), "unknown key (known here: " + known + ")");
    }
  }
}

// Sets every key whose table default is a value (not "(none)", "(required)" or a note) from that
// text, through the key's own parser: the table is the one source of defaults.
template <class T>
void apply_defaults(std::span<const Key<T>> table, T& out) {
  for (const auto& k : table) {
    if (k.default_value.empty() || k.default_value.front() == '(' ||
        k.default_value.find(' ') != std::string_view::npos)
      continue;
    k.set(out, YAML::Load(std::string(k.default_value)),
          "(default of " + std::string(k.path) + ")");
  }
}

void parse_projections(Config& c, const YAML::Node& node, const std::string& where) {
  if (!node.IsSequence())
    throw ConfigError(at(where, node), "expected a list of projections, got " + shown(node));
  std::set<std::string> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const auto item = where + "[" + std::to_string(i) + "]";
    ProjectionConfig p;
    apply_defaults<ProjectionConfig>(kProjectionKeys, p);
    walk<ProjectionConfig>(node[i], kProjectionKeys, "", item + ".", p);
    if (p.name.empty() || p.name.size() > 200)
      throw ConfigError(at(item + ".name", node[i]),
                        "a projection needs a name (1-200 characters)");
    if (p.plugin.empty())
      throw ConfigError(at(item + ".plugin", node[i]),
                        "projection '" + p.name + "' needs a plugin path");
    if (p.retry.max_delay_ms < p.retry.base_delay_ms) {
      throw ConfigError(at(item + ".retry.max_delay_ms", node[i]),
                        "must not be below retry.base_delay_ms");
    }
    if (!names.insert(p.name).second)
      throw ConfigError(at(item + ".name", node[i]), "duplicate projection name '" + p.name + "'");
    c.projections.push_back(std::move(p));
  }
}

void parse_snapshotters(Config& c, const YAML::Node& node, const std::string& where) {
  if (!node.IsSequence())
    throw ConfigError(at(where, node), "expected a list of snapshotters, got " + shown(node));
  std::set<std::string> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const auto item = where + "[" + std::to_string(i) + "]";
    SnapshotterEntry s;
    apply_defaults<SnapshotterEntry>(kSnapshotterKeys, s);
    walk<SnapshotterEntry>(node[i], kSnapshotterKeys, "", item + ".", s);
    if (s.name.empty() || s.name.size() > 200)
      throw ConfigError(at(item + ".name", node[i]),
                        "a snapshotter needs a name (1-200 characters)");
    if (s.plugin.empty())
      throw ConfigError(at(item + ".plugin", node[i]),
                        "snapshotter '" + s.name + "' needs a plugin path (an aggregate folder)");
    if (!names.insert(s.name).second)
      throw ConfigError(at(item + ".name", node[i]), "duplicate snapshotter name '" + s.name + "'");
    c.snapshotters.push_back(std::move(s));
  }
}

void parse_subscriptions(Config& c, const YAML::Node& node, const std::string& where) {
  if (!node.IsSequence())
    throw ConfigError(at(where, node), "expected a list of subscriptions, got " + shown(node));
  std::set<std::string> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const auto item = where + "[" + std::to_string(i) + "]";
    SubscriptionEntry s;
    apply_defaults<SubscriptionEntry>(kSubscriptionKeys, s);
    walk<SubscriptionEntry>(node[i], kSubscriptionKeys, "", item + ".", s);
    if (s.name.empty())
      throw ConfigError(at(item + ".name", node[i]), "a subscription needs a name");
    if (s.plugin.empty())
      throw ConfigError(at(item + ".plugin", node[i]),
                        "subscription '" + s.name + "' needs a plugin path");
    if (s.group.empty() && (s.partitions != 0 || s.max_in_flight != 0)) {
      throw ConfigError(at(item + (s.partitions != 0 ? ".partitions" : ".max_in_flight"), node[i]),
                        "only a subscription with a group has partitions or max_in_flight");
    }
    if (s.retry.max_delay_ms < s.retry.base_delay_ms) {
      throw ConfigError(at(item + ".retry.max_delay_ms", node[i]),
                        "must not be below retry.base_delay_ms");
    }
    if (!names.insert(s.name).second) {
      throw ConfigError(at(item + ".name", node[i]),
                        "duplicate subscription name '" + s.name + "'");
    }
    c.subscriptions.push_back(std::move(s));
  }
}

}  // namespace

SubscriptionFilter SubscriptionEntry::filter() const {
  SubscriptionFilter f;
  f.event_types = event_types;
  for (const auto& id : stream_ids) f.stream_ids.push_back(parse_uuid(id));
  if (!stream_prefix.empty()) f.alias_prefix = stream_prefix;
  return f;
}

SubscriptionOptions SubscriptionEntry::options(std::chrono::milliseconds lease_ttl) const {
  SubscriptionOptions o;
  o.start_from = StartFrom::parse(start_from);
  if (!group.empty()) o.group = group;
  o.partitions = static_cast<int>(partitions);
  if (max_in_flight > 0) o.max_in_flight = max_in_flight;
  o.ack_mode = ack == "in_transaction" ? AckMode::kManual : AckMode::kAuto;
  o.batch_size = static_cast<std::size_t>(batch_size);
  o.lease_ttl = lease_ttl;
  o.max_attempts = static_cast<int>(retry.max_attempts);
  o.retry_base_delay = std::chrono::milliseconds(retry.base_delay_ms);
  o.retry_max_delay = std::chrono::milliseconds(retry.max_delay_ms);
  o.on_failure = on_failure == "stop" ? FailurePolicy::kStop : FailurePolicy::kDeadLetter;
  return o;
}

std::vector<int> SubscriptionEntry::unit_partitions() const {
  if (group.empty() || partitions == 0) return {-1};
  std::vector<int> out;
  for (int p = 0; p < static_cast<int>(partitions); ++p) out.push_back(p);
  return out;
}

SnapshotterConfig SnapshotterEntry::options(std::chrono::milliseconds lease_ttl) const {
  SnapshotterConfig o;
  o.name = name;
  o.threshold_events = threshold;
  o.batch_size = static_cast<std::size_t>(batch);
  o.streams.alias_prefix = stream_prefix;
  o.lease_ttl = lease_ttl;
  return o;
}

ProjectionOptions ProjectionConfig::options() const {
  ProjectionOptions o;
  o.batch_size = static_cast<std::size_t>(batch_size);
  o.event_types = event_types;
  o.max_attempts = static_cast<int>(retry.max_attempts);
  o.retry_base_delay = std::chrono::milliseconds(retry.base_delay_ms);
  o.retry_max_delay = std::chrono::milliseconds(retry.max_delay_ms);
  o.on_failure = on_failure == "stop" ? FailurePolicy::kStop : FailurePolicy::kDeadLetter;
  return o;
}

Config parse(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(
        source, "not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) + ")");
  }
  Config c;
  apply_defaults<Config>(kKeys, c);
  c.source = source;
  if (root.IsNull()) return c;  // an empty file: every default
  walk<Config>(root, kKeys, "", "", c);
  // Leases are renewed at every poll and heartbeats come every second: a TTL shorter than two of
  // those would let live daemons look dead to each other.
  const auto renewal = std::max<std::int64_t>(c.daemon.poll_interval_ms, 1000);
  if (c.daemon.lease_ttl_ms < 2 * renewal) {
    throw ConfigError("daemon.lease_ttl_ms",
                      "must be at least twice max(daemon.poll_interval_ms, 1000 ms), i.e. " +
                          std::to_string(2 * renewal) + ", got " +
                          std::to_string(c.daemon.lease_ttl_ms));
  }
  return c;
}

Config load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, "cannot read the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = parse(ss.str(), path);
  // A relative plugin path is relative to the config file's folder, not to the working
  // directory, so a config works the same wherever rillflowd is started from.
  const auto folder = std::filesystem::absolute(std::filesystem::path(path)).parent_path();
  for (auto& p : c.projections) {
    if (std::filesystem::path(p.plugin).is_relative()) {
      p.plugin = (folder / p.plugin).lexically_normal().string();
    }
  }
  for (auto& s : c.snapshotters) {
    if (std::filesystem::path(s.plugin).is_relative()) {
      s.plugin = (folder / s.plugin).lexically_normal().string();
    }
  }
  for (auto& s : c.subscriptions) {
    if (std::filesystem::path(s.plugin).is_relative()) {
      s.plugin = (folder / s.plugin).lexically_normal().string();
    }
  }
  return c;
}

namespace {
std::string read_url_file(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string url;
  if (!in || !std::getline(in, url)) throw ConfigError(key, "cannot read " + path);
  while (!url.empty() && (url.back() == '\r' || url.back() == ' ')) url.pop_back();
  if (url.empty()) throw ConfigError(key, path + " is empty");
  return url;
}
}  // namespace

std::optional<std::string> resolve_database_url(const DatabaseConfig& db) {
  if (!db.url_env.empty()) {
    if (const char* v = std::getenv(db.url_env.c_str()); v != nullptr && *v != '\0')
      return std::string(v);
  }
  if (!db.url_file.empty()) return read_url_file(db.url_file, "database.url_file");
  if (db.require_url) {
    throw ConfigError("database", "no database URL: set $" + db.url_env +
                                      " or database.url_file (database.require_url is on)");
  }
  return std::nullopt;
}

std::optional<std::string> resolve_listen_url(const DatabaseConfig& db) {
  if (!db.listen_url_env.empty()) {
    if (const char* v = std::getenv(db.listen_url_env.c_str()); v != nullptr && *v != '\0')
      return std::string(v);
  }
  if (!db.listen_url_file.empty())
    return read_url_file(db.listen_url_file, "database.listen_url_file");
  if (!db.listen_url_env.empty()) {
    throw ConfigError("database.listen_url_env",
                      "$" + db.listen_url_env + " is unset or empty (and no listen_url_file)");
  }
  return std::nullopt;
}

namespace {

// Every key of every table, with its full path, in the order the reference lists them.
template <class Fn>
void for_each_key(Fn&& fn) {
  for (const auto& k : kKeys) fn(std::string(k.path), k);
  for (const auto& k : kProjectionKeys) fn("projections[]." + std::string(k.path), k);
  for (const auto& k : kSnapshotterKeys) fn("snapshotters[]." + std::string(k.path), k);
  for (const auto& k : kSubscriptionKeys) fn("subscriptions[]." + std::string(k.path), k);
}

}  // namespace

std::vector<std::string> key_paths() {
  std::vector<std::string> out;
  for_each_key([&](std::string path, const auto&) { out.push_back(std::move(path)); });
  return out;
}

std::string reference_markdown() {
  std::string out =
      "| key | type | default | reloadable (SIGHUP) | meaning |\n"
      "|---|---|---|---|---|\n";
  auto cell = [](std::string_view text) {
    std::string escaped;
    for (const char c : text) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
    return escaped;
  };
  for_each_key([&](const std::string& path, const auto& k) {
    out += "| `" + path + "` | " + cell(k.type) + " | " + cell(k.default_value) + " | " +
           (k.reloadable ? "yes" : "no (restart)") + " | " + cell(k.description) + " |\n";
  });
  return out;
}

std::vector<std::string> restart_only_changes(const Config& running, const Config& next) {
  std::vector<std::string> out;
  for (const auto& k : kKeys) {
    if (!k.reloadable && !k.same(running, next)) out.emplace_back(k.path);
  }
  return out;
}

void apply_reloadable(Config& running, const Config& next) {
  for (const auto& k : kKeys) {
    if (k.reloadable) k.copy(running, next);
  }
}

std::string schema_json() {
  boost::json::array keys;
  for_each_key([&](const std::string& path, const auto& k) {
    keys.push_back(boost::json::object{{"key", path},
                                       {"type", std::string(k.type)},
                                       {"default", std::string(k.default_value)},
                                       {"reloadable", k.reloadable},
                                       {"description", std::string(k.description)}});
  });
  return boost::json::serialize(boost::json::object{{"keys", std::move(keys)}}) + "\n";
}

}  // namespace rillflow::config
