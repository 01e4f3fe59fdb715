#include <rillflow/error.hpp>
#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/snapshots/snapshotter.hpp>
#include <rillflow/store.hpp>

#include "aggregates/aggregate_sql.hpp"
#include "db/sql.hpp"
#include "events/event_sql.hpp"
#include "runtime/lease.hpp"
#include "snapshots/snapshot_sql.hpp"

#include <algorithm>
#include <set>

namespace rillflow {

namespace {

// Events read per round trip while folding one stream (the folder sees them in chunks).
constexpr std::int64_t kFoldChunk = 1000;

constexpr const char* kCountCandidates = R"sql(
select count(*) from {schema}.streams s
where s.version - s.snapshot_version >= $1 and )sql" RILLFLOW_SNAPSHOT_FILTER("$2");

constexpr const char* kRecordError =
    "update {schema}.work_units set last_error = $3, updated_at = now() "
    "where kind = $1 and name = $2 and lease_owner = $4";

const char* const kKind = "snapshotter";

struct Candidate {
  Uuid stream_id{};
  std::int64_t version = 0;           // fold up to here
  std::int64_t snapshot_version = 0;  // the stored body's version (0: none)
  std::optional<Json> body;
  std::int64_t lag = 0;
};

struct Folded {
  Uuid stream_id{};
  std::int64_t version = 0;
  std::string body;
};

std::string uuid_array(const std::set<Uuid>& ids) {
  std::string out = "{";
  for (const auto& id : ids) out += (out.size() > 1 ? "," : "") + to_string(id);
  return out + "}";
}

}  // namespace

struct Snapshotter::Impl {
  std::shared_ptr<const detail::StoreState> state;
  std::shared_ptr<SnapshotFolder> folder;
  SnapshotterConfig config;
  runtime::Leases leases;
  runtime::UnitKey key;
  std::string candidates_sql, count_sql, record_error_sql;

  Impl(const Store& store, std::shared_ptr<SnapshotFolder> f, SnapshotterConfig c)
      : state(store.shared_state()),
        folder(std::move(f)),
        config(std::move(c)),
        leases(*state, config.owner.empty() ? ProjectionDaemon::new_owner_id() : config.owner,
               config.lease_ttl),
        key{kKind, config.name},
        candidates_sql(state->sql(snapshots::kCandidatesSql)),
        count_sql(state->sql(kCountCandidates)),
        record_error_sql(state->sql(kRecordError)) {}

  // The lease while a call runs: taken at its start, renewed after a third of the TTL.
  struct Held {
    std::int64_t epoch = 0;
    std::chrono::steady_clock::time_point renewed;
  };

  std::optional<Held> acquire(db::Connection& conn) {
    pqxx::nontransaction txn(conn.raw());
    leases.ensure(txn, conn, key);
    const auto s = leases.acquire(txn, conn, key);
    if (!s) return std::nullopt;
    return Held{s->epoch, std::chrono::steady_clock::now()};
  }

  // False when the lease is gone (taken over after it expired).
  bool renew(db::Connection& conn, Held& held) {
    if (std::chrono::steady_clock::now() - held.renewed < config.lease_ttl / 3) return true;
    pqxx::nontransaction txn(conn.raw());
    const auto s = leases.acquire(txn, conn, key);
    if (!s || s->epoch != held.epoch) return false;
    held.renewed = std::chrono::steady_clock::now();
    return true;
  }

  void finish(db::Connection& conn, const CompactionReport& report) {
    pqxx::nontransaction txn(conn.raw());
    std::optional<std::string> error;
    if (!report.failures.empty()) {
      const auto& f = report.failures.front();
      error = "stream " + to_string(f.stream_id) + " at version " + std::to_string(f.version) +
              ": " + f.error;
    }
    db::exec(txn, conn, record_error_sql, key.kind, key.name, error, leases.owner());
    leases.release(txn, conn, key);
  }

  std::vector<Candidate> candidates(db::Connection& conn, const std::set<Uuid>& excluded) {
    pqxx::nontransaction txn(conn.raw());
    const auto r =
        db::exec(txn, conn, candidates_sql, config.threshold_events, uuid_array(excluded),
                 config.streams.alias_prefix, static_cast<std::int64_t>(config.batch_size));
    std::vector<Candidate> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      Candidate c;
      c.stream_id = parse_uuid(row[0].c_str());
      c.version = row[1].as<std::int64_t>();
      if (!row[2].is_null()) {
        c.snapshot_version = row[2].as<std::int64_t>();
        c.body = boost::json::parse(std::string_view(row[3].c_str(), row[3].size()));
      }
      c.lag = row[4].as<std::int64_t>();
      out.push_back(std::move(c));
    }
    return out;
  }

  // The state at exactly c.version: the stored body (the real state at its version) plus the
  // events after it up to c.version. Those are all committed: an append bumps the stream's
  // version in the transaction that inserts its events, and the candidate read saw that version.
  std::optional<Folded> fold(db::Connection& conn, const Candidate& c, CompactionReport& report) {
    std::optional<Json> folded = c.body;
    std::int64_t at = c.snapshot_version;
    try {
      while (at < c.version) {
        std::vector<EventEnvelope> chunk;
        {
          pqxx::nontransaction txn(conn.raw());
          chunk = events::read_stream_in(txn, conn, *state, c.stream_id, at + 1,
                                         std::min(kFoldChunk, c.version - at));
        }
        if (chunk.empty() || chunk.front().stream_seq != at + 1 ||
            chunk.back().stream_seq != at + static_cast<std::int64_t>(chunk.size())) {
          throw Error(ErrorCode::kInternal, "events after version " + std::to_string(at) +
                                                " are missing from the stream");
        }
        Json next = folder->fold(folded ? &*folded : nullptr, chunk);
        const bool empty = (next.is_object() && next.as_object().empty()) ||
                           (next.is_array() && next.as_array().empty());
        if ((!next.is_object() && !next.is_array()) || empty) {
          throw Error(ErrorCode::kInvalidArgument,
                      "the folder returned " +
                          (empty ? std::string("an empty state") : boost::json::serialize(next)) +
                          ", not a state (an object or array)");
        }
        folded = std::move(next);
        at += static_cast<std::int64_t>(chunk.size());
        report.events_folded += static_cast<std::int64_t>(chunk.size());
      }
    } catch (const std::exception& e) {
      report.failures.push_back({c.stream_id, c.version, e.what()});
      return std::nullopt;
    } catch (...) {
      report.failures.push_back(
          {c.stream_id, c.version, "the folder threw a non-standard exception"});
      return std::nullopt;
    }
    return Folded{c.stream_id, c.version, boost::json::serialize(*folded)};
  }

  // One round: up to batch_size candidates not in `taken`; returns how many it took up.
  std::size_t round(db::Connection& conn, Held& held, std::set<Uuid>& taken,
                    CompactionReport& report, const Progress& progress) {
    if (!renew(conn, held)) {
      report.lease_lost = true;
      return 0;
    }
    ++report.rounds;
    const auto found = candidates(conn, taken);
    std::vector<Folded> folded;
    for (const auto& c : found) {
      taken.insert(c.stream_id);
      ++report.candidates;
      report.max_events_since_snapshot = std::max(report.max_events_since_snapshot, c.lag);
      if (auto f = fold(conn, c, report)) folded.push_back(std::move(*f));
      if (progress) progress(report);
    }
    if (folded.empty()) return found.size();
    if (!renew(conn, held)) {
      report.lease_lost = true;
      return 0;
    }
    // Stream rows are locked in id order (two snapshotters of different names cannot deadlock).
    std::sort(folded.begin(), folded.end(),
              [](const Folded& a, const Folded& b) { return a.stream_id < b.stream_id; });
    std::size_t written = 0;
    try {
      pqxx::work txn(conn.raw());
      leases.fence(txn, conn, key, held.epoch);  // a lost lease writes nothing
      for (const auto& f : folded) {
        if (aggregates::write_snapshot(txn, conn, *state, f.stream_id, f.version, f.body))
          ++written;
      }
      txn.commit();
    } catch (const LeaseLost&) {
      report.lease_lost = true;
      return 0;
    }
    report.written += written;
    report.superseded += folded.size() - written;
    if (progress) progress(report);
    return found.size();
  }

  template <class Body>
  CompactionReport call(Body&& body) {
    const auto start = std::chrono::steady_clock::now();
    CompactionReport report;
    db::with_connection(state->connections(), [&](db::Connection& conn) {
      auto held = acquire(conn);
      if (!held) {
        report.lease_held_elsewhere = true;
        return;
      }
      try {
        body(conn, *held, report);
      } catch (...) {
        try {
          finish(conn, report);
        } catch (...) {
        }
        throw;
      }
      finish(conn, report);
    });
    report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    return report;
  }
};

Snapshotter::Snapshotter(const Store& store, std::shared_ptr<SnapshotFolder> folder,
                         SnapshotterConfig config) {
  if (!folder) throw Error(ErrorCode::kInvalidArgument, "a snapshotter needs a folder");
  if (config.threshold_events < 1)
    throw Error(ErrorCode::kInvalidArgument, "snapshotter threshold_events must be 1 or more");
  if (config.batch_size < 1)
    throw Error(ErrorCode::kInvalidArgument, "snapshotter batch_size must be 1 or more");
  if (config.name.empty() || config.name.size() > 200)
    throw Error(ErrorCode::kInvalidArgument, "a snapshotter name has 1 to 200 characters");
  if (config.lease_ttl < std::chrono::milliseconds(100))
    throw Error(ErrorCode::kInvalidArgument, "snapshotter lease_ttl must be 100 ms or more");
  impl_ = std::make_unique<Impl>(store, std::move(folder), std::move(config));
}

Snapshotter::~Snapshotter() = default;
Snapshotter::Snapshotter(Snapshotter&&) noexcept = default;
Snapshotter& Snapshotter::operator=(Snapshotter&&) noexcept = default;

const SnapshotterConfig& Snapshotter::config() const noexcept {
  return impl_->config;
}

CompactionReport Snapshotter::compact_once(const Progress& progress) {
  return impl_->call([&](db::Connection& conn, Impl::Held& held, CompactionReport& report) {
    std::set<Uuid> taken;
    impl_->round(conn, held, taken, report, progress);
  });
}

CompactionReport Snapshotter::run_until_idle(const Progress& progress) {
  return impl_->call([&](db::Connection& conn, Impl::Held& held, CompactionReport& report) {
    std::int64_t at_start = 0;
    {
      pqxx::nontransaction txn(conn.raw());
      at_start = db::exec(txn, conn, impl_->count_sql, impl_->config.threshold_events,
                          impl_->config.streams.alias_prefix)[0][0]
                     .as<std::int64_t>();
    }
    const auto budget = static_cast<std::size_t>(at_start) + impl_->config.batch_size;
    std::set<Uuid> taken;
    while (report.candidates < budget && !report.lease_lost) {
      if (impl_->round(conn, held, taken, report, progress) == 0) break;
    }
  });
}

}  // namespace rillflow
