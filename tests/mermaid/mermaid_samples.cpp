// Prints traces rendered by rillflow::to_mermaid, hostile labels included, as a JSON array of
// {"name", "diagram", "participants": [label...], "messages": [[from, to, label]...]} where the
// labels are the raw texts Mermaid must show. check_mermaid.mjs parses every diagram with the
// real Mermaid parser and compares what it understood with these expectations.
#include <rillflow/rillflow.hpp>

#include <iostream>

using namespace rillflow;

namespace {

struct Sample {
  std::string name;
  Trace trace;
};

TraceEvent event(std::int64_t seq, const Uuid& stream, std::int64_t stream_seq, std::string type,
                 std::optional<std::string> alias, std::optional<std::int64_t> caused_by) {
  TraceEvent te;
  te.event.global_seq = seq;
  te.event.stream_id = stream;
  te.event.stream_seq = stream_seq;
  te.event.type = std::move(type);
  te.stream_alias = std::move(alias);
  te.caused_by = caused_by;
  te.id = event_id(te.event);
  return te;
}

std::string label_of(const TraceEvent& te) {
  std::string s = "#" + std::to_string(te.event.global_seq) + " " + te.event.type;
  if (te.caused_by) s += " (after #" + std::to_string(*te.caused_by) + ")";
  return s;
}

}  // namespace

int main() {
  const Uuid a = parse_uuid("11111111-1111-4111-8111-111111111111");
  const Uuid b = parse_uuid("22222222-2222-4222-8222-222222222222");
  const Uuid c = parse_uuid("33333333-3333-4333-8333-333333333333");
  std::vector<Sample> samples;
  samples.push_back({"chain",
                     {a,
                      {event(1, a, 1, "OrderPlaced", "orders:1", std::nullopt),
                       event(2, b, 1, "PaymentRequested", "payments:1", 1),
                       event(3, b, 2, "PaymentCaptured", "payments:1", 2),
                       event(4, a, 2, "OrderPaid", "orders:1", 3)}}});
  samples.push_back(
      {"hostile",
       {a,
        {event(10, a, 1, "X\n  s1->>s1: injected\nsequenceDiagram", "a;b\nparticipant s9", {}),
         event(11, b, 1, "%% comment ; end #59; --> -x ->> : <br/> <script>alert(1)</script>",
               "participant s2 as \"q\" %%", 10),
         event(12, c, 1, "\"quoted\" 'single' `tick` {braces} [brackets] |pipe| &amp; \\ back",
               std::nullopt, 11),
         event(13, a, 2, "end", "loop", 12), event(14, b, 2, "Note over s1: x", "rect", 13),
         event(15, c, 2, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xff broken", "\xe6\xb5\x81",
               12)}}});
  samples.push_back({"root_only", {a, {event(7, a, 1, "Solo", std::nullopt, std::nullopt)}}});

  boost::json::array out;
  for (const auto& s : samples) {
    boost::json::array participants, messages;
    std::vector<Uuid> order;
    for (const auto& te : s.trace.events) {
      if (std::find(order.begin(), order.end(), te.event.stream_id) != order.end()) continue;
      order.push_back(te.event.stream_id);
      participants.push_back(
          boost::json::value(te.stream_alias.value_or("stream " + to_string(te.event.stream_id))));
    }
    const auto pid = [&](const Uuid& id) {
      return "s" + std::to_string(std::find(order.begin(), order.end(), id) - order.begin() + 1);
    };
    for (const auto& te : s.trace.events) {
      std::string from = pid(te.event.stream_id);
      if (te.caused_by) {
        for (const auto& cause : s.trace.events) {
          if (cause.event.global_seq == *te.caused_by) from = pid(cause.event.stream_id);
        }
      }
      messages.push_back(boost::json::array{boost::json::value(from),
                                            boost::json::value(pid(te.event.stream_id)),
                                            boost::json::value(label_of(te))});
    }
    out.push_back(boost::json::object{{"name", s.name},
                                      {"diagram", to_mermaid(s.trace)},
                                      {"participants", participants},
                                      {"messages", messages}});
  }
  std::cout << boost::json::serialize(out) << "\n";
}
