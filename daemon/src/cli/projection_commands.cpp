// projections list | status | pause | resume | reset-checkpoint | rebuild | run-once |
// run-until-idle | dlq-list | dlq-requeue | dlq-delete | metrics | wait

#include "cli/cli_context.hpp"
#include "plugin/plugin_loader.hpp"

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace rillflow::cli {

namespace {

// A runtime with every projection of --config registered (plugins loaded), or none.
ProjectionDaemon runtime(Context& ctx, bool need_handlers) {
  auto builder = ProjectionDaemon::builder(ctx.store());
  const auto& cfg = ctx.config();
  if (need_handlers && cfg.projections.empty()) {
    throw UsageError("this command runs projections: pass --config with a projection registry");
  }
  for (const auto& p : cfg.projections) {
    builder.register_projection(p.name, plugin::load_projection_plugin(p.plugin, p.settings),
                                p.options());
  }
  builder.lease_ttl(std::chrono::milliseconds(cfg.daemon.lease_ttl_ms));
  return builder.build();
}

// The acknowledgement of an admin command, as text or JSON.
void done(const Context& ctx, const std::string& action, const std::string& text,
          Json detail = boost::json::object()) {
  if (ctx.json) {
    auto o = detail.as_object();
    o["ok"] = true;
    o["action"] = action;
    print_json(o);
  } else {
    std::cout << text << "\n";
  }
}

std::string when(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? format_timestamp(*t) : std::string("-");
}

void print_status(const Context& ctx, const ProjectionStatus& s) {
  if (ctx.json) {
    print_json(to_json(s));
    return;
  }
  std::cout << s.name << ": at global_seq " << s.last_global_seq << (s.paused ? ", paused" : "")
            << (s.stopped ? ", STOPPED" : "") << ", lease " << s.lease_owner.value_or("-")
            << " (until " << when(s.lease_expires_at) << ", epoch " << s.lease_epoch << ")";
  if (s.attempts > 0)
    std::cout << ", attempts " << s.attempts << ", backoff until " << when(s.backoff_until);
  if (s.last_error) std::cout << "\n  last error: " << *s.last_error;
  std::cout << "\n";
}

// Progress on a terminal: events done / total and the rate, rewritten in place.
class Progress {
 public:
  explicit Progress(std::int64_t total) : total_(total), enabled_(isatty(STDERR_FILENO) != 0) {}
  void update(const std::string& name, std::size_t done) {
    if (!enabled_) return;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r%s: %zu / %lld events, %.0f events/s   ", name.c_str(), done,
                 static_cast<long long>(total_), secs > 0 ? static_cast<double>(done) / secs : 0.0);
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  std::int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Catches up (waiting out retry backoffs); 0 when nothing remains, else 1.
int run_until_idle(Context& ctx, ProjectionDaemon& d, const std::string& only) {
  std::int64_t total = 0;
  for (const auto& name : d.registered()) {
    if (only.empty() || name == only) total += d.metrics(name).lag_events;
  }
  Progress progress(total);
  const auto on_progress = [&](const std::string& name, std::size_t n) {
    progress.update(name, n);
  };
  const RunReport r =
      only.empty() ? d.run_until_idle(on_progress) : d.run_until_idle(only, on_progress);
  progress.finish();
  if (ctx.json) {
    print_json(boost::json::object{
        {"processed", r.processed}, {"parked", r.parked}, {"remaining", r.remaining}});
  } else {
    std::cout << "processed " << r.processed << " event(s), parked " << r.parked << ", remaining "
              << r.remaining << "\n";
  }
  if (r.remaining > 0) {
    std::cerr << "rillflow: " << r.remaining
              << " event(s) remain unprocessed (a projection is paused, stopped by its failure "
                 "policy, or leased by another runtime; see `rillflow projections status`)\n";
    return 1;
  }
  return 0;
}

// A shadow rebuild's progress on stderr: rewritten in place on a terminal, else one line at most
// every two seconds (and the first), so a log shows it too.
class ShadowProgressLine {
 public:
  void update(const ShadowRebuildProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ && printed_ && now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    printed_ = true;
    const double percent =
        p.total > 0 ? 100.0 * static_cast<double>(p.done) / static_cast<double>(p.total) : 100.0;
    std::string eta = "-";
    if (p.eta_seconds) eta = std::to_string(static_cast<long long>(*p.eta_seconds + 0.5)) + " s";
    std::fprintf(stderr, "%s%s (shadow): %lld / %lld (%.0f%%), %.0f events/s, ETA %s%s",
                 tty_ ? "\r" : "", p.name.c_str(), static_cast<long long>(p.done),
                 static_cast<long long>(p.total), percent, p.rate, eta.c_str(),
                 tty_ ? "   " : "\n");
  }
  void finish() {
    if (tty_ && printed_) std::fprintf(stderr, "\n");
  }

 private:
  bool tty_ = isatty(STDERR_FILENO) != 0;
  bool printed_ = false;
  std::chrono::steady_clock::time_point last_;
};

// projections rebuild NAME --shadow [--cancel]; 0 once swapped in (or cancelled), else 1.
int rebuild_shadow(Context& ctx, const std::string& name, bool cancel) {
  if (cancel) {
    if (!runtime(ctx, false).cancel_shadow_rebuild(name)) {
      std::cerr << "rillflow: no shadow rebuild of '" << name << "' to cancel\n";
      return 1;
    }
    done(ctx, "cancel-shadow-rebuild",
         "cancelled the shadow rebuild of " + name + " (the live read model is untouched)",
         boost::json::object{{"name", name}});
    return 0;
  }
  auto d = runtime(ctx, true);
  ShadowProgressLine line;
  ShadowRebuildOptions options;
  options.on_progress = [&](const ShadowRebuildProgress& p) { line.update(p); };
  options.should_stop = [] { return stop_requested(); };
  catch_stop_signals();
  const auto r = d.rebuild_shadow(name, options);
  line.finish();
  if (!r.swapped) {
    std::cerr << "rillflow: stopped before the swap: the live read model is untouched and the "
                 "shadow is kept; run the same command again to resume it, or add --cancel to "
                 "drop it\n";
    return 1;
  }
  if (ctx.json) {
    print_json(boost::json::object{
        {"ok", true},
        {"action", "rebuild-shadow"},
        {"name", name},
        {"processed", r.processed},
        {"parked", r.parked},
        {"last_global_seq", r.last_global_seq},
        {"relations", boost::json::array(r.relations.begin(), r.relations.end())}});
  } else {
    std::string relations;
    for (const auto& rel : r.relations) relations += (relations.empty() ? "" : ", ") + rel;
    std::cout << "rebuilt " << name << " beside the live read model and swapped it in ("
              << r.processed
              << " event(s) handled; relations: " << (relations.empty() ? "none" : relations)
              << "); it continues after global_seq " << r.last_global_seq << "\n";
  }
  if (r.parked > 0) {
    std::cerr << "rillflow: " << r.parked << " event(s) were parked on the way: see `rillflow "
              << "projections dlq-list " << name << "`\n";
  }
  return 0;
}

// "5s", "250ms", "2m" or a bare number of seconds ("1.5"); anything else is a usage error.
std::chrono::milliseconds parse_timeout(const std::string& text) {
  std::size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = used == 0 ? std::string() : text.substr(used);
  double factor = 0;
  if (unit.empty() || unit == "s") factor = 1000;
  if (unit == "ms") factor = 1;
  if (unit == "m" || unit == "min") factor = 60000;
  if (used == 0 || factor == 0 || !(value >= 0) || value * factor > 1e12) {
    throw UsageError("--timeout must be a duration such as 5s, 250ms or 2m, not '" + text + "'");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * factor + 0.5));
}

// A CLI11 check from a function that throws on bad input: its message is the complaint.
template <class Check>
CLI::Validator throwing_check(Check check, const char* name) {
  return CLI::Validator(
      [check](std::string& text) {
        try {
          check(text);
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
        return std::string();
      },
      name);
}

}  // namespace

void add_projection_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "projections", "Projection admin (add --config to load the projection plugins)");
  group->require_subcommand(1);
  group->fallthrough();  // --tenant before or after the subcommand
  group
      ->add_option("--tenant", ctx.tenant,
                   "Work on this tenant's projections (schema tenant_NAME of --schema's registry)")
      ->check(
          throwing_check([](const std::string& text) { validate_tenant_name(text); }, "TENANT"));
  static std::string name;
  static std::int64_t position = 0, id = 0;
  static std::size_t limit = 100;

  auto command = [&](const char* cmd, const char* help, bool takes_name,
                     std::function<int()> body) {
    auto* sub = group->add_subcommand(cmd, help);
    if (takes_name) sub->add_option("name", name, "Projection name")->required();
    sub->callback([&ctx, body] { ctx.run = body; });
    return sub;
  };

  command("list", "List every projection with a stored checkpoint", false, [&ctx] {
    auto d = runtime(ctx, false);
    const auto all = d.list();
    if (ctx.json) {
      boost::json::array out;
      for (const auto& s : all) out.push_back(to_json(s));
      print_json(out);
    } else {
      if (all.empty()) std::cout << "no projections yet\n";
      for (const auto& s : all) print_status(ctx, s);
    }
    return 0;
  });
  command("status", "Checkpoint, lease, pause and retry state of one projection", true, [&ctx] {
    const auto s = runtime(ctx, false).status(name);
    if (!s) {
      std::cerr << "rillflow: no projection named '" << name << "'\n";
      return 1;
    }
    print_status(ctx, *s);
    return 0;
  });
  command("pause", "Pause a projection (running daemons stop processing it at their next tick)",
          true, [&ctx] {
            runtime(ctx, false).pause(name);
            done(ctx, "pause", "paused " + name, boost::json::object{{"name", name}});
            return 0;
          });
  command("resume", "Resume a paused or stopped projection (clears its backoff)", true, [&ctx] {
    runtime(ctx, false).resume(name);
    done(ctx, "resume", "resumed " + name, boost::json::object{{"name", name}});
    return 0;
  });
  auto* reset =
      command("reset-checkpoint", "Handle every event after a global_seq again (0: from the start)",
              true, [&ctx] {
                runtime(ctx, false).reset_checkpoint(name, position);
                done(ctx, "reset-checkpoint",
                     "checkpoint of " + name + " set after global_seq " + std::to_string(position),
                     boost::json::object{{"name", name}, {"after_global_seq", position}});
                return 0;
              });
  reset->add_option("position", position, "global_seq to restart after")
      ->required()
      ->check(non_negative());
  static bool no_run = false, shadow = false, cancel = false;
  auto* rebuild = command(
      "rebuild",
      "Clear the read model (reset hook), rewind to the start, clear the DLQ, then catch up; "
      "with --shadow, build it beside the live one and swap it in",
      true, [&ctx] {
        if (cancel && !shadow) throw UsageError("--cancel goes with --shadow");
        if (shadow) return rebuild_shadow(ctx, name, cancel);
        auto d = runtime(ctx, true);
        d.rebuild(name);
        const std::string what =
            "rebuilt " + name + " (read model cleared, checkpoint at the start)";
        if (no_run) {
          done(ctx, "rebuild", what, boost::json::object{{"name", name}});
          return 0;
        }
        // With --json the one document on stdout is the catch-up report.
        (ctx.json ? std::cerr : std::cout) << what << "\n";
        return run_until_idle(ctx, d, name);
      });
  auto* no_run_flag =
      rebuild->add_flag("--no-run", no_run, "Only reset; leave catching up to the daemon");
  rebuild
      ->add_flag("--shadow", shadow,
                 "Build the new read model in a shadow schema while the live one keeps serving, "
                 "catch it up to the head, then swap it in one transaction and drop the old one "
                 "(progress and ETA on stderr; SIGINT stops before the swap, a rerun resumes)")
      ->excludes(no_run_flag);
  rebuild->add_flag("--cancel", cancel,
                    "With --shadow: drop the shadow rebuild of NAME (the live read model is "
                    "untouched)");
  static std::string only;
  auto* once =
      command("run-once", "Process one batch of every projection (or --name)", false, [&ctx] {
        auto d = runtime(ctx, true);
        std::map<std::string, TickResult> results;
        if (only.empty()) {
          results = d.tick_all_once();
        } else {
          results[only] = d.tick_once(only);
        }
        boost::json::object out;
        for (const auto& [n, r] : results) {
          if (ctx.json) {
            out[n] = boost::json::object{{"outcome", to_string(r.outcome)},
                                         {"processed", r.processed},
                                         {"failed", r.failed}};
          } else {
            std::cout << n << ": " << to_string(r.outcome) << ", " << r.processed << " processed, "
                      << r.failed << " failed\n";
          }
        }
        if (ctx.json) print_json(out);
        return 0;
      });
  once->add_option("--name", only, "Only this projection");
  auto* idle = command("run-until-idle", "Process until every projection (or --name) is caught up",
                       false, [&ctx] {
                         auto d = runtime(ctx, true);
                         return run_until_idle(ctx, d, only);
                       });
  idle->add_option("--name", only, "Only this projection");
  auto* dlq_list = command("dlq-list", "List parked events of a projection", true, [&ctx] {
    const auto entries = runtime(ctx, false).dlq_list(name, limit);
    boost::json::array out;
    for (const auto& e : entries) {
      if (ctx.json) {
        out.push_back(boost::json::object{{"id", e.id},
                                          {"event", to_json(e.event)},
                                          {"error", e.error},
                                          {"attempts", e.attempts},
                                          {"failed_at", format_timestamp(e.failed_at)},
                                          {"requeued", e.requeued}});
      } else {
        std::cout << "#" << e.id << " global_seq " << e.event.global_seq << " " << e.event.type
                  << " (stream " << to_string(e.event.stream_id) << "@" << e.event.stream_seq
                  << "), " << e.attempts << " attempt(s), failed " << format_timestamp(e.failed_at)
                  << (e.requeued ? ", requeued" : "") << "\n  " << e.error << "\n";
      }
    }
    if (ctx.json) print_json(out);
    if (!ctx.json && entries.empty()) std::cout << "the DLQ of " << name << " is empty\n";
    return 0;
  });
  dlq_list->add_option("--limit", limit, "At most this many entries")
      ->capture_default_str()
      ->check(non_negative());
  auto* requeue =
      command("dlq-requeue", "Redeliver one parked event (once) at the projection's next tick",
              true, [&ctx] {
                if (!runtime(ctx, false).dlq_requeue(name, id)) {
                  std::cerr << "rillflow: no DLQ entry " << id << " for " << name << "\n";
                  return 1;
                }
                done(ctx, "dlq-requeue", "requeued DLQ entry " + std::to_string(id) + " of " + name,
                     boost::json::object{{"name", name}, {"id", id}});
                return 0;
              });
  requeue->add_option("--id", id, "DLQ entry id (see dlq-list)")->required()->check(non_negative());
  auto* del = command("dlq-delete", "Drop one parked event", true, [&ctx] {
    if (!runtime(ctx, false).dlq_delete(name, id)) {
      std::cerr << "rillflow: no DLQ entry " << id << " for " << name << "\n";
      return 1;
    }
    done(ctx, "dlq-delete", "deleted DLQ entry " + std::to_string(id) + " of " + name,
         boost::json::object{{"name", name}, {"id", id}});
    return 0;
  });
  del->add_option("--id", id, "DLQ entry id (see dlq-list)")->required()->check(non_negative());
  command("metrics", "Position, head, lag (events and seconds) and DLQ figures of one projection",
          true, [&ctx] {
            const auto m = runtime(ctx, false).metrics(name);
            const auto blockers = ctx.store().projections().blocked_by(name);
            if (ctx.json) {
              auto o = to_json(m).as_object();
              boost::json::array blocked;
              for (const auto& b : blockers) blocked.push_back(to_json(b));
              o["blocked_by"] = std::move(blocked);
              print_json(o);
            } else {
              std::cout << m.name << ": position " << m.position << ", head " << m.head << ", lag "
                        << m.lag_events << " events / " << m.lag_seconds << " s, DLQ "
                        << m.dlq_count << " (oldest " << m.dlq_oldest_age_seconds << " s)\n";
              for (const auto& b : blockers) {
                std::cout << "  blocked: " << b.message();
                if (b.state) std::cout << ", " << *b.state;
                if (b.query) std::cout << ", query: " << *b.query;
                std::cout << "\n";
              }
            }
            return 0;
          });
  static std::string timeout_text = "5s";
  auto* wait = command(
      "wait",
      "Wait until a projection has handled the event at --position (exit 1 on timeout, saying "
      "what is left)",
      true, [&ctx] {
        const auto timeout = parse_timeout(timeout_text);
        try {
          const auto r = ctx.store().projections().wait_for(name, position, timeout);
          const double waited_ms = static_cast<double>(r.waited.count()) / 1000.0;
          if (ctx.json) {
            print_json(boost::json::object{{"name", name},
                                           {"position", position},
                                           {"reached", true},
                                           {"parked", r.parked},
                                           {"waited_ms", waited_ms},
                                           {"checks", r.checks}});
          } else {
            std::cout << name << " has handled global_seq " << position
                      << (r.parked ? " (the event is parked in the DLQ)" : "") << " (waited "
                      << waited_ms << " ms)\n";
          }
          return 0;
        } catch (const ProjectionWaitTimeout& e) {
          if (ctx.json) {
            print_json(boost::json::object{{"name", name},
                                           {"position", position},
                                           {"reached", false},
                                           {"projection_at", e.projection_at()},
                                           {"behind", e.behind()},
                                           {"committed", e.committed()},
                                           {"message", e.what()}});
          }
          std::cerr << "rillflow: timeout: " << e.what() << "\n";
          return 1;
        }
      });
  wait->add_option("--position", position, "global_seq of the event to wait for")
      ->required()
      ->check(non_negative());
  wait->add_option("--timeout", timeout_text, "How long to wait: 5s, 250ms, 2m")
      ->capture_default_str()
      ->check(throwing_check([](const std::string& text) { parse_timeout(text); }, "DURATION"));
}

}  // namespace rillflow::cli
