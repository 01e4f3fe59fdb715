// snapshots compact-once | run-until-idle | list | status

#include "cli/cli_context.hpp"
#include "plugin/plugin_loader.hpp"

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace rillflow::cli {

namespace {

struct CompactOptions {
  std::int64_t threshold = 0;  // 0: each snapshotter's own
  std::int64_t batch = 0;
  std::string name;
};

// The snapshotters of --config (folders loaded), with --threshold / --batch applied.
std::vector<std::pair<std::string, Snapshotter>> snapshotters(Context& ctx,
                                                              const CompactOptions& o) {
  const auto& cfg = ctx.config();
  std::vector<std::pair<std::string, Snapshotter>> out;
  bool found = o.name.empty();
  for (const auto& s : cfg.snapshotters) {
    if (!o.name.empty() && s.name != o.name) continue;
    found = true;
    auto config = s.options(std::chrono::milliseconds(cfg.daemon.lease_ttl_ms));
    if (o.threshold > 0) config.threshold_events = o.threshold;
    if (o.batch > 0) config.batch_size = static_cast<std::size_t>(o.batch);
    out.emplace_back(s.name,
                     Snapshotter(ctx.store(), plugin::load_folder_plugin(s.plugin, s.settings),
                                 std::move(config)));
  }
  if (!found) {
    std::string known;
    for (const auto& s : cfg.snapshotters) known += (known.empty() ? "" : ", ") + s.name;
    throw NotFound("no snapshotter '" + o.name + "' in " + cfg.source + " (configured: " + known +
                   ")");
  }
  return out;
}

// Progress on a terminal: streams taken up, written, failed, rewritten in place.
class Progress {
 public:
  Progress() : enabled_(isatty(STDERR_FILENO) != 0) {}
  void update(const std::string& name, const CompactionReport& r) {
    if (!enabled_) return;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r%s: %zu stream(s), %zu written, %zu failed, %.0f streams/s   ",
                 name.c_str(), r.candidates, r.written, r.failures.size(),
                 secs > 0 ? static_cast<double>(r.candidates) / secs : 0.0);
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

Json report_json(const std::string& name, const CompactionReport& r) {
  boost::json::array failures;
  for (const auto& f : r.failures) {
    failures.push_back(boost::json::object{
        {"stream_id", to_string(f.stream_id)}, {"version", f.version}, {"error", f.error}});
  }
  return boost::json::object{{"name", name},
                             {"rounds", r.rounds},
                             {"candidates", r.candidates},
                             {"written", r.written},
                             {"superseded", r.superseded},
                             {"failed", r.failures.size()},
                             {"events_folded", r.events_folded},
                             {"max_events_since_snapshot", r.max_events_since_snapshot},
                             {"lease_held_elsewhere", r.lease_held_elsewhere},
                             {"lease_lost", r.lease_lost},
                             {"duration_ms", static_cast<double>(r.duration.count()) / 1000.0},
                             {"failures", failures}};
}

// Runs every (or --name's) snapshotter once or until idle; 0 when all did their work, else 1.
int compact(Context& ctx, const CompactOptions& o, bool until_idle) {
  if (ctx.config().snapshotters.empty()) {
    std::cerr << "rillflow: no snapshotters configured: pass --config FILE (or set "
                 "RILLFLOW_CONFIG) with a `snapshotters:` list (name, plugin: an aggregate folder "
                 "library, threshold, batch); see docs/snapshots.md\n";
    return 1;
  }
  auto all = snapshotters(ctx, o);
  boost::json::array reports;
  std::size_t written = 0, failed = 0;
  bool incomplete = false;
  for (auto& [name, snapshotter] : all) {
    Progress progress;
    const auto on_progress = [&, n = name](const CompactionReport& r) { progress.update(n, r); };
    const auto r = until_idle ? snapshotter.run_until_idle(on_progress)
                              : snapshotter.compact_once(on_progress);
    progress.finish();
    written += r.written;
    failed += r.failures.size();
    incomplete = incomplete || r.lease_held_elsewhere || r.lease_lost;
    if (ctx.json) {
      reports.push_back(report_json(name, r));
      continue;
    }
    if (r.lease_held_elsewhere) {
      std::cout << name << ": leased by another process; nothing done\n";
      continue;
    }
    std::cout << name << ": " << r.candidates << " candidate(s), " << r.written
              << " snapshot(s) written, " << r.superseded << " superseded, " << r.failures.size()
              << " failed, " << r.events_folded << " event(s) folded in "
              << static_cast<double>(r.duration.count()) / 1e6 << " s"
              << (r.lease_lost ? " (lease lost: stopped)" : "") << "\n";
    for (const auto& f : r.failures) {
      std::cout << "  failed " << to_string(f.stream_id) << " at version " << f.version << ": "
                << f.error << "\n";
    }
  }
  if (ctx.json) {
    print_json(
        boost::json::object{{"snapshotters", reports}, {"written", written}, {"failed", failed}});
  }
  if (failed > 0) {
    std::cerr << "rillflow: " << failed
              << " stream(s) could not be folded (skipped; see the errors above)\n";
  }
  if (incomplete) {
    std::cerr << "rillflow: a snapshotter's lease is held by another process; its work was not "
                 "done here\n";
  }
  return failed > 0 || incomplete ? 1 : 0;
}

Json status_json(const SnapshotStatus& s) {
  boost::json::object o{{"stream_id", to_string(s.stream_id)},
                        {"version", s.version},
                        {"snapshot_version", s.snapshot_version},
                        {"events_since_snapshot", s.events_since_snapshot},
                        {"size_bytes", s.size_bytes}};
  o["alias"] = s.alias ? Json(*s.alias) : Json(nullptr);
  o["snapshot_at"] = s.snapshot_at ? Json(format_timestamp(*s.snapshot_at)) : Json(nullptr);
  return o;
}

void print_status(const SnapshotStatus& s) {
  std::cout << to_string(s.stream_id) << (s.alias ? " (" + *s.alias + ")" : "") << ": version "
            << s.version << ", snapshot version "
            << (s.snapshot_version > 0 ? std::to_string(s.snapshot_version) : "- (none)") << ", "
            << s.events_since_snapshot << " event(s) since, size " << s.size_bytes << " bytes";
  if (s.snapshot_at) std::cout << ", written " << format_timestamp(*s.snapshot_at);
  std::cout << "\n";
}

}  // namespace

void add_snapshot_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "snapshots", "Aggregate snapshots: background compaction (folders from --config) and status");
  group->require_subcommand(1);
  static CompactOptions options;
  static std::size_t limit = 100;
  static std::int64_t min_events = 0;
  static std::string stream;

  auto compact_command = [&](const char* cmd, const char* help, bool until_idle) {
    auto* sub = group->add_subcommand(cmd, help);
    sub->add_option("--threshold", options.threshold,
                    "Events since the last snapshot that make a stream a candidate (default: each "
                    "snapshotter's `threshold`)")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{10000000}));
    sub->add_option("--batch", options.batch,
                    "Streams per round (default: each snapshotter's `batch`)")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{100000}));
    sub->add_option("--name", options.name, "Only this snapshotter of --config");
    sub->callback([&ctx, until_idle] {
      ctx.run = [&ctx, until_idle] { return compact(ctx, options, until_idle); };
    });
  };
  compact_command("compact-once",
                  "Write snapshots for up to --batch streams at least --threshold events past "
                  "their last snapshot",
                  false);
  compact_command("run-until-idle",
                  "Compact until no stream is --threshold events past its snapshot (each stream "
                  "at most once; failures are reported and skipped)",
                  true);

  auto* list = group->add_subcommand(
      "list",
      "Streams by events since their last snapshot (largest first): version, snapshot "
      "version, size");
  list->add_option("--limit", limit, "At most this many streams")
      ->capture_default_str()
      ->check(non_negative());
  list->add_option("--min-events", min_events,
                   "Only streams with at least this many events since their snapshot")
      ->capture_default_str()
      ->check(non_negative());
  list->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto all = SnapshotCatalog(ctx.store()).list(limit, min_events);
      if (ctx.json) {
        boost::json::array out;
        for (const auto& s : all) out.push_back(status_json(s));
        print_json(out);
      } else {
        if (all.empty()) std::cout << "no streams\n";
        for (const auto& s : all) print_status(s);
      }
      return 0;
    };
  });

  auto* status =
      group->add_subcommand("status", "One stream's version, snapshot version and snapshot size");
  status->add_option("stream", stream, "Stream id (UUID) or alias")->required();
  status->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto id = stream_arg(ctx, stream, /*create=*/false);
      const auto s = SnapshotCatalog(ctx.store()).status(id);
      if (!s) {
        throw NotFound("stream " + stream + " has no events in schema '" + ctx.effective_schema() +
                       "'");
      }
      if (ctx.json) {
        print_json(status_json(*s));
      } else {
        print_status(*s);
      }
      return 0;
    };
  });
}

}  // namespace rillflow::cli
