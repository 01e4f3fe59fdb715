// streams resolve; events append / read / tail.

#include "cli/cli_context.hpp"

#include <chrono>
#include <iostream>
#include <thread>

namespace rillflow::cli {

namespace {

Expected parse_expected(const std::string& text) {
  if (text == "any") return Expected::any();
  if (text == "no_stream" || text == "no-stream") return Expected::no_stream();
  if (text == "stream_exists" || text == "stream-exists") return Expected::stream_exists();
  try {
    std::size_t used = 0;
    const auto v = std::stoll(text, &used);
    if (used == text.size() && v >= 0) return Expected::exact(v);
  } catch (const std::exception&) {
  }
  throw UsageError("--expected must be any, no_stream, stream_exists or a version number, not '" +
                   text + "'");
}

void print_event(const Context& ctx, const EventEnvelope& e) {
  if (ctx.json) {
    print_json(to_json(e));
    return;
  }
  std::cout << "#" << e.global_seq << " " << to_string(e.stream_id) << "@" << e.stream_seq << " "
            << e.type << " " << boost::json::serialize(e.body) << "\n";
}

}  // namespace

void add_event_commands(CLI::App& app, Context& ctx) {
  auto* streams = app.add_subcommand("streams", "Stream utilities");
  streams->require_subcommand(1);
  auto* resolve = streams->add_subcommand(
      "resolve", "Print the stream id of an alias such as orders:42, creating it on first use");
  static std::string alias;
  resolve->add_option("alias", alias, "The alias")->required();
  resolve->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto id = ctx.store().resolve_stream_alias(alias);
      if (ctx.json) {
        print_json(boost::json::object{{"alias", alias}, {"stream_id", to_string(id)}});
      } else {
        std::cout << to_string(id) << "\n";
      }
      return 0;
    };
  });

  auto* events = app.add_subcommand("events", "Append and read events");
  events->require_subcommand(1);

  // events append
  static struct {
    std::string stream, type, body, expected = "any", headers, key, causation, correlation;
  } a;
  auto* append = events->add_subcommand("append", "Append one event to a stream");
  append->add_option("stream", a.stream, "Stream UUID, or an alias (resolved like streams resolve)")
      ->required();
  append->add_option("type", a.type, "Event type")->required();
  append->add_option("body", a.body, "Event body as JSON")->required();
  append
      ->add_option("--expected", a.expected,
                   "any | no_stream | stream_exists | N (the stream's current version)")
      ->capture_default_str();
  append->add_option("--headers", a.headers, "Headers as a JSON object");
  append->add_option("--idempotency-key", a.key,
                     "Per-stream key: a retry with the same event returns the original result");
  append->add_option("--causation-id", a.causation, "Causation UUID");
  append->add_option("--correlation-id", a.correlation, "Correlation UUID");
  append->callback([&ctx] {
    ctx.run = [&ctx] {
      // Every argument is checked before the alias is resolved: a refused append creates
      // nothing.
      const auto expected = parse_expected(a.expected);
      if (a.type.empty()) throw UsageError("the event type must not be empty");
      AppendOptions opts;
      if (!a.headers.empty()) {
        auto headers = json_arg(a.headers, "--headers");
        if (!headers.is_object()) throw UsageError("--headers must be a JSON object");
        opts.headers = std::move(headers);
      }
      if (!a.key.empty()) opts.idempotency_key = a.key;
      if (!a.causation.empty()) opts.causation_id = uuid_arg(a.causation, "--causation-id");
      if (!a.correlation.empty()) {
        opts.correlation_id = uuid_arg(a.correlation, "--correlation-id");
      }
      Event event(a.type, json_arg(a.body, "body"));
      const auto id = stream_arg(ctx, a.stream, /*create=*/true);
      const auto r = ctx.store().events().append_with(id, expected, {std::move(event)}, opts);
      if (ctx.json) {
        print_json(boost::json::object{{"stream_id", to_string(r.stream_id)},
                                       {"version", r.last_version},
                                       {"global_seq", r.last_global_seq},
                                       {"replayed", r.replayed}});
      } else {
        std::cout << "appended to " << to_string(r.stream_id) << " at version " << r.last_version
                  << " (global_seq " << r.last_global_seq << ")"
                  << (r.replayed ? ", replayed from its idempotency key" : "") << "\n";
      }
      return 0;
    };
  });

  // events read
  static struct {
    std::string stream;
    std::int64_t from = 1;
    std::size_t limit = 0;
  } r;
  auto* read = events->add_subcommand("read", "Print the events of one stream in order");
  read->add_option("stream", r.stream, "Stream UUID, or an alias")->required();
  read->add_option("--from", r.from, "First stream version to print")
      ->capture_default_str()
      ->check(non_negative());
  read->add_option("--limit", r.limit, "Print at most this many events (0: all)")
      ->check(non_negative());
  read->callback([&ctx] {
    ctx.run = [&ctx] {
      StreamRead range{.from_version = r.from};
      if (r.limit > 0) range.limit = r.limit;
      const auto id = stream_arg(ctx, r.stream, /*create=*/false);
      boost::json::array out;
      for (const auto& e : ctx.store().events().read_stream(id, range)) {
        if (ctx.json) {
          out.push_back(to_json(e));
        } else {
          print_event(ctx, e);
        }
      }
      if (ctx.json) print_json(out);
      return 0;
    };
  });

  // events tail
  static struct {
    bool from_start = false, follow = false;
    std::size_t max = 0;
    int poll_ms = 250;
  } t;
  auto* tail = events->add_subcommand(
      "tail",
      "Print events of the global feed in delivery order as they commit (--json: one array; "
      "with --follow one JSON object per line)");
  tail->add_flag("--from-start", t.from_start, "Start at the first event instead of the end");
  tail->add_flag("--follow,-f", t.follow, "Keep waiting for new events (Ctrl-C stops)");
  tail->add_option("--max", t.max, "Stop after this many events (0: no limit)")
      ->check(non_negative());
  tail->add_option("--poll-interval", t.poll_ms, "Milliseconds between polls with --follow")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  tail->callback([&ctx] {
    ctx.run = [&ctx] {
      const auto store = ctx.store().events();
      FeedPosition pos = t.from_start ? FeedPosition{} : store.feed_end();
      std::size_t printed = 0;
      // Without --follow the output ends, so --json collects one array.
      const bool collect = ctx.json && !t.follow;
      boost::json::array out;
      const auto finish = [&] {
        if (collect) print_json(out);
        return 0;
      };
      while (true) {
        const auto batch = store.read_feed(pos, 500);
        pos = batch.next;
        for (const auto& e : batch.events) {
          if (collect) {
            out.push_back(to_json(e));
          } else {
            print_event(ctx, e);
          }
          if (t.max > 0 && ++printed >= t.max) return finish();
        }
        std::cout.flush();
        if (!batch.caught_up) continue;
        if (!t.follow) return finish();
        std::this_thread::sleep_for(std::chrono::milliseconds(t.poll_ms));
      }
    };
  });

  // trace <correlation-id> [--mermaid]
  auto* trace = app.add_subcommand(
      "trace",
      "The events of one correlation id across streams, linked by causation id (text, --json "
      "or a --mermaid sequence diagram)");
  static std::string correlation;
  static bool mermaid = false;
  static std::size_t trace_limit = 10000;
  trace->add_option("correlation-id", correlation, "The correlation id (a UUID)")->required();
  trace->add_flag("--mermaid", mermaid,
                  "Print a Mermaid sequence diagram: streams as participants, events as "
                  "messages drawn from the stream of their cause");
  trace->add_option("--limit", trace_limit, "At most this many events")
      ->capture_default_str()
      ->check(non_negative());
  trace->callback([&ctx] {
    ctx.run = [&ctx] {
      // Checked before connecting: usage errors exit 2.
      const Uuid id = uuid_arg(correlation, "correlation-id");
      if (mermaid && ctx.json) throw UsageError("--mermaid and --json exclude each other");
      if (trace_limit == 0) throw UsageError("--limit must be at least 1");
      const Trace chain = ctx.store().events().trace(id, trace_limit);
      if (ctx.json) {
        print_json(to_json(chain));
      } else if (mermaid) {
        std::cout << to_mermaid(chain);
      } else {
        for (const auto& te : chain.events) {
          const auto& e = te.event;
          std::cout << "#" << e.global_seq << " "
                    << te.stream_alias.value_or(to_string(e.stream_id)) << "@" << e.stream_seq
                    << " " << e.type << " id " << to_string(te.id);
          if (te.caused_by) {
            std::cout << " <- #" << *te.caused_by;
          } else if (e.causation_id) {
            std::cout << " <- " << to_string(*e.causation_id) << " (outside the trace)";
          }
          std::cout << "\n";
        }
      }
      if (chain.events.empty()) {
        std::cerr << "rillflow: no events with correlation id " << to_string(id) << "\n";
        return 1;
      }
      return 0;
    };
  });
}

}  // namespace rillflow::cli
