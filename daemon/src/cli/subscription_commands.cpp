// subscriptions create | list | get | delete | pause | resume | reset | tail | groups |
// group-status | set-group-max-in-flight | set-group-partitions | parked-list | parked-requeue |
// parked-delete. docs/subscriptions.md.

#include "cli/cli_context.hpp"

#include <iostream>

namespace rillflow::cli {

namespace {

// "beginning", "end", a global_seq (events after it) or an RFC 3339 UTC time.
StartFrom start_arg(const std::string& text) {
  try {
    return StartFrom::parse(text);
  } catch (const rillflow::Error& e) {
    throw UsageError(std::string("--start-from: ") + e.what());
  }
}

void done(const Context& ctx, const std::string& action, const std::string& text,
          boost::json::object detail) {
  if (ctx.json) {
    detail["ok"] = true;
    detail["action"] = action;
    print_json(detail);
  } else {
    std::cout << text << "\n";
  }
}

void print_info(const SubscriptionInfo& i) {
  std::cout << i.name << ": last_seq " << i.last_global_seq << ", head " << i.head << ", lag "
            << i.lag_events << (i.paused ? ", paused" : "") << ", start " << i.start_from;
  if (!i.filter.event_types.empty()) {
    std::cout << ", types";
    for (const auto& t : i.filter.event_types) std::cout << " " << t;
  }
  if (!i.filter.stream_ids.empty()) std::cout << ", " << i.filter.stream_ids.size() << " stream(s)";
  if (i.filter.alias_prefix) std::cout << ", alias prefix " << *i.filter.alias_prefix;
  if (!i.groups.empty()) {
    std::cout << ", groups";
    for (const auto& g : i.groups) std::cout << " " << g;
  }
  std::cout << "\n";
}

void print_group(const GroupStatus& s) {
  std::cout << s.subscription << " group " << s.group << ": last_seq " << s.last_seq << ", head "
            << s.head << ", lag " << s.lag_events << " (" << s.lag_seconds << " s), in flight "
            << s.in_flight << ", max_in_flight "
            << (s.max_in_flight ? std::to_string(*s.max_in_flight) : std::string("unbounded"))
            << ", partitions " << s.partitions << ", members " << s.members.size() << "\n";
  for (const auto& m : s.members) std::cout << "  member " << m << "\n";
  for (const auto& p : s.partition_owners) {
    std::cout << "  partition " << p.partition << ": last_seq " << p.last_global_seq << ", owner "
              << p.owner.value_or("-") << "\n";
  }
}

// The subscription must exist (reads never write, unknown names are errors).
SubscriptionInfo existing(Context& ctx, const std::string& name) {
  auto i = ctx.store().subscriptions().get(name);
  if (!i) throw rillflow::NotFound("subscription", name);
  return *i;
}

}  // namespace

void add_subscription_commands(CLI::App& app, Context& ctx) {
  auto* top = app.add_subcommand("subscriptions", "Subscriptions and consumer groups");
  top->require_subcommand(1);
  static std::string name, group, start_from = "beginning", alias_prefix;
  static std::vector<std::string> event_types, stream_ids;
  static std::size_t limit = 10;
  static std::int64_t id = 0, max_in_flight = 0, value = 0;
  static int partitions = 0;
  static bool follow = false;

  auto command = [&](const char* cmd, const char* help, std::function<int()> body) {
    auto* sub = top->add_subcommand(cmd, help);
    sub->add_option("name", name, "Subscription name")->required();
    sub->callback([&ctx, body] { ctx.run = body; });
    return sub;
  };

  auto* create = command("create", "Store a subscription (filter and start)", [&ctx] {
    SubscriptionFilter filter;
    filter.event_types = event_types;
    for (const auto& s : stream_ids) filter.stream_ids.push_back(stream_arg(ctx, s, false));
    if (!alias_prefix.empty()) filter.alias_prefix = alias_prefix;
    SubscriptionOptions options;
    options.start_from = start_arg(start_from);
    if (!group.empty()) {
      options.group = group;
      options.partitions = partitions;
      if (max_in_flight > 0) options.max_in_flight = max_in_flight;
    }
    const auto info = ctx.store().subscriptions().create(name, filter, options);
    if (ctx.json) {
      auto o = to_json(info).as_object();
      o["ok"] = true;
      o["action"] = "create";
      print_json(o);
    } else {
      std::cout << "created subscription " << name << " (start " << info.start_from << ")\n";
    }
    return 0;
  });
  create->add_option("--event-type", event_types, "Deliver only this event type (repeatable)");
  create->add_option("--stream", stream_ids,
                     "Deliver only this stream: UUID or alias (repeatable)");
  create->add_option("--alias-prefix", alias_prefix, "Deliver only streams whose alias starts so");
  create
      ->add_option("--start-from", start_from,
                   "beginning, end, a global_seq (events after it) or a UTC time")
      ->capture_default_str();
  create->add_option("--group", group, "Also create this consumer group");
  create->add_option("--partitions", partitions, "Partitions of the group (0: none)")
      ->check(CLI::Range(0, 1024));
  create->add_option("--max-in-flight", max_in_flight, "The group's in-flight bound")
      ->check(CLI::Range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max()));

  {
    auto* list = top->add_subcommand("list", "List subscriptions");
    list->callback([&ctx] {
      ctx.run = [&ctx] {
        const auto all = ctx.store().subscriptions().list();
        if (ctx.json) {
          boost::json::array out;
          for (const auto& i : all) out.push_back(to_json(i));
          print_json(out);
        } else {
          if (all.empty()) std::cout << "no subscriptions yet\n";
          for (const auto& i : all) print_info(i);
        }
        return 0;
      };
    });
  }
  command("get", "One subscription: filter, start, position, lag, groups", [&ctx] {
    const auto i = existing(ctx, name);
    if (ctx.json) {
      print_json(to_json(i));
    } else {
      print_info(i);
    }
    return 0;
  });
  command("delete", "Delete a subscription, its groups, checkpoints and parked events", [&ctx] {
    ctx.store().subscriptions().remove(name);
    done(ctx, "delete", "deleted subscription " + name, {{"name", name}});
    return 0;
  });
  command("pause", "Pause delivery", [&ctx] {
    ctx.store().subscriptions().pause(name);
    done(ctx, "pause", "paused subscription " + name, {{"name", name}});
    return 0;
  });
  command("resume", "Resume delivery", [&ctx] {
    ctx.store().subscriptions().resume(name);
    done(ctx, "resume", "resumed subscription " + name, {{"name", name}});
    return 0;
  });
  static std::string reset_to;
  auto* reset =
      command("reset", "Deliver again from a start (every unit; in flight forgotten)", [&ctx] {
        const auto from = start_arg(reset_to);
        ctx.store().subscriptions().reset(name, from);
        done(ctx, "reset", "subscription " + name + " starts again from " + from.to_string(),
             {{"name", name}, {"start_from", from.to_string()}});
        return 0;
      });
  reset->add_option("start", reset_to, "beginning, end, a global_seq or a UTC time")->required();

  auto* tail = command(
      "tail", "Print the next events and acknowledge them (--follow to keep going)", [&ctx] {
        auto subs = ctx.store().subscriptions();
        const auto info = existing(ctx, name);
        SubscriptionOptions options;
        options.ack_mode = AckMode::kManual;
        options.batch_size = std::max<std::size_t>(1, std::min<std::size_t>(limit, 500));
        if (!group.empty()) {
          subs.group_status(name, group);  // the group must exist
          options.group = group;
        }
        auto [handle, rx] = subs.subscribe(name, info.filter, options);
        if (follow) {
          catch_stop_signals();
        }
        boost::json::array events;
        std::size_t n = 0;
        while (n < limit && !stop_requested()) {
          auto e = rx.next(follow ? std::chrono::milliseconds(500) : std::chrono::milliseconds(0));
          if (!e) {
            if (follow) continue;
            break;
          }
          if (ctx.json) {
            events.push_back(to_json(*e));
          } else {
            std::cout << e->global_seq << " " << to_string(e->stream_id) << " " << e->stream_seq
                      << " " << e->type << " " << boost::json::serialize(e->body) << std::endl;
          }
          handle.ack(e->global_seq);
          ++n;
        }
        handle.close();
        if (ctx.json) {
          print_json(boost::json::object{{"subscription", name},
                                         {"group", group.empty() ? Json(nullptr) : Json(group)},
                                         {"acked", n},
                                         {"events", events}});
        } else {
          std::cout << "acked " << n << " event(s) of " << name
                    << (group.empty() ? "" : " (group " + group + ")") << "\n";
        }
        return 0;
      });
  tail->add_option("--group", group, "Consume as a member of this consumer group");
  tail->add_option("--limit", limit, "Stop after this many events")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  tail->add_flag("--follow", follow, "Wait for new events until --limit or Ctrl-C");

  command("groups", "The consumer groups of a subscription with last_seq, head and lag", [&ctx] {
    const auto all = ctx.store().subscriptions().groups(name);
    if (ctx.json) {
      boost::json::array out;
      for (const auto& g : all) out.push_back(to_json(g));
      print_json(boost::json::object{{"subscription", name}, {"groups", out}});
    } else {
      if (all.empty()) std::cout << name << ": no groups\n";
      for (const auto& g : all) print_group(g);
    }
    return 0;
  });
  auto* status = command(
      "group-status", "last_seq, head, lag, in flight, max_in_flight, members, partitions", [&ctx] {
        const auto s = ctx.store().subscriptions().group_status(name, group);
        if (ctx.json) {
          print_json(to_json(s));
        } else {
          print_group(s);
        }
        return 0;
      });
  status->add_option("--group", group, "Group name")->required();
  static CLI::Option* value_opt = nullptr;
  auto* set_max = command(
      "set-group-max-in-flight",
      "Bound delivered-but-unacked events of a group (no --value: unset)", [&ctx] {
        std::optional<std::int64_t> v;
        if (value_opt->count() > 0) v = value;
        ctx.store().subscriptions().set_group_max_in_flight(name, group, v);
        done(ctx, "set-group-max-in-flight",
             "max_in_flight of " + name + " group " + group + " " +
                 (v ? "set to " + std::to_string(*v) : std::string("unset")),
             {{"name", name}, {"group", group}, {"max_in_flight", v ? Json(*v) : Json(nullptr)}});
        return 0;
      });
  set_max->add_option("--group", group, "Group name")->required();
  value_opt = set_max->add_option("--value", value, "The bound (1 or more); omit to unset")
                  ->check(CLI::Range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max()));
  auto* set_parts = command(
      "set-group-partitions",
      "Re-partition a group (0: unpartitioned); new partitions start at the lowest checkpoint",
      [&ctx] {
        ctx.store().subscriptions().set_group_partitions(name, group, partitions);
        done(ctx, "set-group-partitions",
             "partitions of " + name + " group " + group + " set to " + std::to_string(partitions),
             {{"name", name}, {"group", group}, {"partitions", partitions}});
        return 0;
      });
  set_parts->add_option("--group", group, "Group name")->required();
  set_parts->add_option("--value", partitions, "Partitions (0 to 1024)")
      ->required()
      ->check(CLI::Range(0, 1024));

  auto* plist = command("parked-list", "Events parked after their retries were used up", [&ctx] {
    const auto all = ctx.store().subscriptions().parked(name, limit);
    if (ctx.json) {
      boost::json::array out;
      for (const auto& d : all) {
        out.push_back(boost::json::object{{"id", d.id},
                                          {"unit", d.projection},
                                          {"event", to_json(d.event)},
                                          {"error", d.error},
                                          {"attempts", d.attempts},
                                          {"failed_at", format_timestamp(d.failed_at)},
                                          {"requeued", d.requeued}});
      }
      print_json(out);
    } else {
      if (all.empty()) std::cout << name << ": no parked events\n";
      for (const auto& d : all) {
        std::cout << "#" << d.id << " " << d.projection << " global_seq " << d.event.global_seq
                  << " " << d.event.type << " attempts " << d.attempts
                  << (d.requeued ? " (requeued)" : "") << ": " << d.error << "\n";
      }
    }
    return 0;
  });
  plist->add_option("--limit", limit, "At most this many")->capture_default_str();
  auto parked_id = [&ctx](bool requeue) {
    auto subs = ctx.store().subscriptions();
    const bool ok = requeue ? subs.requeue_parked(name, id) : subs.delete_parked(name, id);
    if (!ok) {
      throw cli::NotFound("parked event " + std::to_string(id) + " of subscription '" + name + "'");
    }
    const std::string verb = requeue ? "requeued" : "deleted";
    done(ctx, requeue ? "parked-requeue" : "parked-delete",
         verb + " parked event " + std::to_string(id) + " of " + name,
         {{"name", name}, {"id", id}});
    return 0;
  };
  command("parked-requeue", "Deliver one parked event again, once",
          [parked_id] { return parked_id(true); })
      ->add_option("--id", id, "Parked event id")
      ->required();
  command("parked-delete", "Delete one parked event", [parked_id] { return parked_id(false); })
      ->add_option("--id", id, "Parked event id")
      ->required();
}

}  // namespace rillflow::cli
