#pragma once
// Statement pieces shared by the snapshotter and the snapshot catalog (private to core).

/// The stream filter of SnapshotterConfig::streams over `streams s`: parameter `p` is the alias
/// prefix ('' for every stream). Served by stream_aliases' unique index on stream_id.
#define RILLFLOW_SNAPSHOT_FILTER(p)                                 \
  "(" p                                                             \
  "::text = '' or exists (select 1 from {schema}.stream_aliases a " \
  "where a.stream_id = s.stream_id and starts_with(a.alias, " p "::text)))"

/// The columns SnapshotCatalog decodes, over `streams s left join snapshots n`.
#define RILLFLOW_SNAPSHOT_STATUS_COLUMNS                                          \
  "s.stream_id::text, (select a.alias from {schema}.stream_aliases a "            \
  "where a.stream_id = s.stream_id), s.version, s.snapshot_version, "             \
  "s.version - s.snapshot_version, coalesce(pg_column_size(n.body), 0)::bigint, " \
  "(extract(epoch from n.created_at) * 1000000)::bigint"

namespace rillflow::snapshots {

/// The snapshotter's candidate query: $1 threshold, $2 stream ids already taken up (uuid[]
/// text), $3 alias prefix, $4 limit. Served by streams_snapshot_lag_idx (largest backlog first,
/// a backward index scan bounded by the threshold): it never reads events.
inline constexpr const char* kCandidatesSql = R"sql(
select s.stream_id::text, s.version, n.version, n.body::text, s.version - s.snapshot_version
from {schema}.streams s left join {schema}.snapshots n on n.stream_id = s.stream_id
where s.version - s.snapshot_version >= $1
  and not (s.stream_id = any($2::uuid[]))
  and )sql" RILLFLOW_SNAPSHOT_FILTER("$3") R"sql(
order by s.version - s.snapshot_version desc
limit $4
)sql";

}  // namespace rillflow::snapshots
