#include "schema/migrations.hpp"

#include <array>
#include <cstdio>

namespace rillflow::schema {

const std::string_view kBootstrapSql = R"sql(create schema if not exists {schema};
create table if not exists {schema}.rillflow_migrations (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);
)sql";

namespace {

// Events. The feed is cut into batches by ticks: snapshots of which transactions had
// committed (see docs/ordering.md). tx_id is the appending transaction's top-level id.
constexpr std::string_view kEvents = R"sql(create table {schema}.streams (
  stream_id uuid primary key,
  version bigint not null check (version >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create table {schema}.events (
  global_seq bigint generated always as identity primary key,
  stream_id uuid not null,
  stream_seq bigint not null check (stream_seq >= 1),
  event_type text not null,
  body jsonb not null,
  headers jsonb not null default '{}'::jsonb,
  causation_id uuid,
  correlation_id uuid,
  created_at timestamptz not null default now(),
  tx_id xid8 not null default pg_current_xact_id(),
  constraint events_stream_seq_key unique (stream_id, stream_seq)
);
create index events_tx_id_idx on {schema}.events (tx_id);
create table {schema}.idempotency_keys (
  stream_id uuid not null,
  key text not null,
  request jsonb not null,
  first_version bigint,
  last_version bigint,
  first_global_seq bigint,
  last_global_seq bigint,
  created_at timestamptz not null default now(),
  primary key (stream_id, key)
);
create table {schema}.stream_aliases (
  alias text primary key,
  stream_id uuid not null unique,
  created_at timestamptz not null default now()
);
create table {schema}.ticks (
  tick_id bigint primary key,
  snapshot pg_snapshot not null,
  created_at timestamptz not null default now()
);
insert into {schema}.ticks (tick_id, snapshot) values (0, pg_current_snapshot());
)sql";

// Projection runtime: checkpoint, lease (owner, expiry, fencing epoch), retry state, DLQ.
constexpr std::string_view kProjections = R"sql(create table {schema}.projections (
  name text primary key,
  from_tick bigint not null default 0,
  to_tick bigint not null default 0,
  after_seq bigint not null default 0,
  last_global_seq bigint not null default 0,
  paused boolean not null default false,
  stopped boolean not null default false,
  lease_owner text,
  lease_expires_at timestamptz,
  lease_epoch bigint not null default 0,
  attempts integer not null default 0,
  backoff_until timestamptz,
  last_error text,
  updated_at timestamptz not null default now()
);
create table {schema}.projection_dlq (
  id bigint generated always as identity primary key,
  projection text not null,
  global_seq bigint not null,
  stream_id uuid not null,
  stream_seq bigint not null,
  event_type text not null,
  body jsonb not null,
  headers jsonb not null,
  causation_id uuid,
  correlation_id uuid,
  event_created_at timestamptz not null,
  error text not null,
  attempts integer not null,
  failed_at timestamptz not null default now(),
  requeued_at timestamptz
);
create index projection_dlq_projection_idx on {schema}.projection_dlq (projection, id);
create table {schema}.daemon_nodes (
  owner text primary key,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now()
);
)sql";

// Documents: JSONB per (collection, id) with an optimistic version starting at 1, soft delete,
// and aggregate snapshots (one per stream, the real folded state at `version`). The GIN index
// uses jsonb_path_ops: the query DSL filters equality with containment (@>), which it serves.
constexpr std::string_view kDocuments = R"sql(create table {schema}.docs (
  collection text not null,
  id uuid not null,
  doc jsonb not null,
  version bigint not null check (version >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  constraint docs_pkey primary key (collection, id)
);
create index docs_doc_gin_idx on {schema}.docs using gin (doc jsonb_path_ops);
create table {schema}.snapshots (
  stream_id uuid not null,
  version bigint not null check (version >= 1),
  body jsonb not null,
  created_at timestamptz not null default now(),
  constraint snapshots_pkey primary key (stream_id)
);
)sql";

// One home for every consumer kind's runtime state (runtime/work_unit.hpp explains the choice):
// the projections' rows become work units of kind 'projection' and their DLQ rows parked events
// of that kind. `projections` and `projection_dlq` stay as views of them for tools and SQL.
constexpr std::string_view kRuntime = R"sql(alter table {schema}.projections rename to work_units;
alter table {schema}.work_units rename constraint projections_pkey to work_units_pkey;
alter table {schema}.work_units add column kind text not null default 'projection';
alter table {schema}.work_units alter column kind drop default;
alter table {schema}.work_units drop constraint work_units_pkey;
alter table {schema}.work_units add constraint work_units_pkey primary key (kind, name);
create view {schema}.projections as
  select name, from_tick, to_tick, after_seq, last_global_seq, paused, stopped, lease_owner,
         lease_expires_at, lease_epoch, attempts, backoff_until, last_error, updated_at
  from {schema}.work_units where kind = 'projection';
alter table {schema}.projection_dlq rename to parked;
alter table {schema}.parked rename column projection to name;
alter table {schema}.parked add column kind text not null default 'projection';
alter table {schema}.parked alter column kind drop default;
drop index {schema}.projection_dlq_projection_idx;
create index parked_unit_idx on {schema}.parked (kind, name, id);
create view {schema}.projection_dlq as
  select id, name as projection, global_seq, stream_id, stream_seq, event_type, body, headers,
         causation_id, correlation_id, event_created_at, error, attempts, failed_at, requeued_at
  from {schema}.parked where kind = 'projection';
)sql";

// Subscriptions (docs/subscriptions.md): what only subscriptions have. Their leases, checkpoints
// and parked events are work units of kind 'subscription' (one per subscription, group or
// partition). Here: definitions, groups, members (liveness), the dispatch cursor of the units a
// group works on, and the delivered-but-unacked (and acked-out-of-order) events.
constexpr std::string_view kSubscriptions = R"sql(create table {schema}.subscriptions (
  name text primary key,
  filter jsonb not null,
  start_from text not null,
  start_tick bigint not null default 0,
  min_global_seq bigint not null default 0,
  min_created_at timestamptz,
  paused boolean not null default false,
  created_at timestamptz not null default now()
);
create table {schema}.subscription_groups (
  subscription text not null references {schema}.subscriptions (name) on delete cascade,
  name text not null,
  partitions integer not null default 0 check (partitions >= 0),
  max_in_flight bigint check (max_in_flight >= 1),
  start_tick bigint not null default 0,
  created_at timestamptz not null default now(),
  constraint subscription_groups_pkey primary key (subscription, name)
);
create table {schema}.subscription_members (
  subscription text not null,
  grp text not null,
  member text not null,
  ttl_ms bigint not null,
  joined_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  constraint subscription_members_pkey primary key (subscription, grp, member)
);
create table {schema}.subscription_cursors (
  unit text primary key,
  subscription text not null,
  grp text not null,
  from_tick bigint not null,
  to_tick bigint not null,
  after_seq bigint not null,
  last_seq bigint not null default 0
);
create table {schema}.subscription_deliveries (
  unit text not null,
  global_seq bigint not null,
  subscription text not null,
  grp text not null,
  member text not null,
  acked boolean not null default false,
  pos_from bigint not null,
  pos_to bigint not null,
  pos_after bigint not null,
  prev_from bigint not null,
  prev_to bigint not null,
  prev_after bigint not null,
  deliveries integer not null default 1,
  delivered_at timestamptz not null default now(),
  constraint subscription_deliveries_pkey primary key (unit, global_seq)
);
create index subscription_deliveries_group_idx on {schema}.subscription_deliveries
  (subscription, grp) where not acked;
)sql";

// Snapshotter candidates without scanning events: each stream keeps the version of its latest
// snapshot (maintained by the snapshot write, aggregates::write_snapshot), and an index on the
// events since it serves "version - snapshot_version >= threshold, largest first".
constexpr std::string_view kSnapshotter = R"sql(alter table {schema}.streams
  add column snapshot_version bigint not null default 0;
update {schema}.streams s set snapshot_version = n.version
  from {schema}.snapshots n where n.stream_id = s.stream_id;
create index streams_snapshot_lag_idx on {schema}.streams ((version - snapshot_version));
)sql";

// The tenant registry (schema-per-tenant, docs/tenants.md): one row per provisioned tenant
// schema. Every schema gets it (one list of migrations for all); only a base schema's is used.
constexpr std::string_view kTenants = R"sql(create table {schema}.tenants (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,47}$'),
  schema_name text not null unique,
  created_at timestamptz not null default now(),
  schema_version integer not null,
  migrated_at timestamptz not null default now(),
  archived_at timestamptz
);
)sql";

// Shadow rebuilds (docs/projections.md): one row per projection whose read model is being built
// beside the live one. Its progress is the shadow unit's checkpoint (work units of kind
// 'projection_shadow'); live_was_paused remembers the operator's flag while the swap pauses it.
constexpr std::string_view kShadowRebuilds = R"sql(create table {schema}.shadow_rebuilds (
  name text primary key,
  shadow_schema text not null,
  started_at timestamptz not null default now(),
  live_was_paused boolean
);
)sql";

// The lowest global_seq of each tick's batch (previous tick, this tick), written when the tick
// is made. A feed read starts its index scan there instead of at the beginning of the table.
// Null in ticks made before this migration: readers then scan from the start, as before.
constexpr std::string_view kTickRanges = R"sql(alter table {schema}.ticks
  add column first_seq bigint;
)sql";

const std::array<Migration, 9> kMigrations{{
    {1,
     "events",
     kEvents,
     {"streams", "events", "events_pkey", "events_stream_seq_key", "events_tx_id_idx",
      "idempotency_keys", "stream_aliases", "ticks"}},
    {2,
     "projections",
     kProjections,
     {"daemon_nodes"}},  // its other relations are reshaped by migration 4
    {3,
     "documents",
     kDocuments,
     {"docs", "docs_pkey", "docs_doc_gin_idx", "snapshots", "snapshots_pkey"}},
    {4,
     "runtime",
     kRuntime,
     {"work_units", "work_units_pkey", "parked", "parked_unit_idx", "projections",
      "projection_dlq"}},
    {5,
     "subscriptions",
     kSubscriptions,
     {"subscriptions", "subscriptions_pkey", "subscription_groups", "subscription_groups_pkey",
      "subscription_members", "subscription_members_pkey", "subscription_cursors",
      "subscription_cursors_pkey", "subscription_deliveries", "subscription_deliveries_pkey",
      "subscription_deliveries_group_idx"}},
    {6, "snapshotter", kSnapshotter, {"streams_snapshot_lag_idx"}},

    {7, "tenants", kTenants, {"tenants", "tenants_pkey", "tenants_schema_name_key"}},
    {8, "shadow_rebuilds", kShadowRebuilds, {"shadow_rebuilds", "shadow_rebuilds_pkey"}},
    {9, "tick_ranges", kTickRanges, {}},
}};

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

std::string checksum(std::string_view sql) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : sql) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

}  // namespace rillflow::schema
