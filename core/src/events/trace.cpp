// Traces: events of one correlation id, linked by causation id; JSON and Mermaid renderings.

#include <rillflow/events/event_store.hpp>
#include <rillflow/events/trace.hpp>

#include "db/sql.hpp"
#include "runtime/feed_reader.hpp"

#include <map>
#include <unordered_map>

namespace rillflow {

namespace {

// One code point from UTF-8 at `i` (advanced past it); U+FFFD for an invalid sequence.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  int extra = 0;
  char32_t cp = 0;
  if (c < 0x80) {
    ++i;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    extra = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + static_cast<std::size_t>(extra) >= s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k <= extra; ++k) {
    const unsigned char n = byte(i + static_cast<std::size_t>(k));
    if ((n & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (n & 0x3F);
  }
  i += static_cast<std::size_t>(extra) + 1;
  // Overlong forms, surrogates and values beyond Unicode are not characters.
  static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0xFFFD;
  return cp;
}

bool plain(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
         c == '_' || c == '.' || c == ',' || c == '-' || c == '/' || c == '(' || c == ')' ||
         c == '@';
}

}  // namespace

Uuid event_id(const EventEnvelope& event) {
  if (event.headers.is_object()) {
    const auto& h = event.headers.as_object();
    if (const auto* v = h.if_contains("event_id"); v != nullptr && v->is_string()) {
      try {
        return parse_uuid(std::string_view(v->as_string()));
      } catch (const Error&) {
        // not a UUID: fall back to the derived id
      }
    }
  }
  Uuid id = event.stream_id;
  // A bijection of the 64-bit sequence number (odd multiplier, xor-shift), xor-ed in.
  auto x = static_cast<std::uint64_t>(event.stream_seq) * 0x9E3779B97F4A7C15ULL;
  x ^= x >> 31;
  for (int k = 0; k < 8; ++k) {
    id.data[8 + k] ^= static_cast<std::uint8_t>(x >> (56 - 8 * k));
  }
  return id;
}

std::string mermaid_label(std::string_view text, std::size_t max_chars) {
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (chars == max_chars) {
      out += "...";
      break;
    }
    const char32_t c = next_code_point(text, i);
    if (plain(c)) {
      out += static_cast<char>(c);
    } else {
      out += "#" + std::to_string(static_cast<std::uint32_t>(c)) + ";";
    }
    ++chars;
  }
  // Leading and trailing spaces would be trimmed by Mermaid; keep them visible.
  if (!out.empty() && out.front() == ' ') out.replace(0, 1, "#32;");
  if (!out.empty() && out.back() == ' ') out.replace(out.size() - 1, 1, "#32;");
  return out.empty() ? std::string("#32;") : out;
}

Json to_json(const Trace& trace) {
  boost::json::array events;
  for (const auto& te : trace.events) {
    const auto& e = te.event;
    events.push_back(boost::json::object{
        {"global_seq", e.global_seq},
        {"id", to_string(te.id)},
        {"stream_id", to_string(e.stream_id)},
        {"stream_alias", te.stream_alias ? Json(*te.stream_alias) : Json(nullptr)},
        {"stream_seq", e.stream_seq},
        {"type", e.type},
        {"causation_id", e.causation_id ? Json(to_string(*e.causation_id)) : Json(nullptr)},
        {"caused_by", te.caused_by ? Json(*te.caused_by) : Json(nullptr)},
        {"created_at", format_timestamp(e.created_at)}});
  }
  return boost::json::object{{"correlation_id", to_string(trace.correlation_id)},
                             {"events", std::move(events)}};
}

std::string to_mermaid(const Trace& trace) {
  std::string out = "sequenceDiagram\n";
  // Participants in order of first appearance, named s1, s2... (never from event data).
  std::map<Uuid, std::string> participant;
  for (const auto& te : trace.events) {
    if (participant.count(te.event.stream_id) != 0) continue;
    const std::string pid = "s" + std::to_string(participant.size() + 1);
    participant.emplace(te.event.stream_id, pid);
    const std::string label =
        te.stream_alias ? *te.stream_alias : "stream " + to_string(te.event.stream_id);
    out += "  participant " + pid + " as " + mermaid_label(label) + "\n";
  }
  std::unordered_map<std::int64_t, const TraceEvent*> by_seq;
  for (const auto& te : trace.events) by_seq.emplace(te.event.global_seq, &te);
  for (const auto& te : trace.events) {
    const std::string& to = participant.at(te.event.stream_id);
    std::string from = to;
    if (te.caused_by) {
      if (const auto it = by_seq.find(*te.caused_by); it != by_seq.end()) {
        from = participant.at(it->second->event.stream_id);
      }
    }
    std::string label = "#" + std::to_string(te.event.global_seq) + " " + te.event.type;
    if (te.caused_by) label += " (after #" + std::to_string(*te.caused_by) + ")";
    out += "  " + from + "->>" + to + ": " + mermaid_label(label, 120) + "\n";
  }
  if (trace.events.empty()) {
    out += "  Note over trace: no events\n";  // a diagram must have a statement
  }
  return out;
}

Trace EventStore::trace(const Uuid& correlation_id, std::size_t limit) const {
  if (limit == 0) throw Error(ErrorCode::kInvalidArgument, "trace needs a limit of at least 1");
  Trace out;
  out.correlation_id = correlation_id;
  const auto rows =
      db::without_transaction(state_->connections(), [&](auto& txn, db::Connection& conn) {
        return db::exec(txn, conn,
                        state_->sql("select " + runtime::envelope_columns("e") +
                                    ", (select min(a.alias) from {schema}.stream_aliases a "
                                    "where a.stream_id = e.stream_id) "
                                    "from {schema}.events e where e.correlation_id = $1::uuid "
                                    "order by e.global_seq limit $2"),
                        to_string(correlation_id), static_cast<std::int64_t>(limit));
      });
  std::map<Uuid, std::int64_t> by_id;
  for (const auto& row : rows) {
    TraceEvent te;
    te.event = runtime::envelope_from_row(row);
    te.id = event_id(te.event);
    const auto& alias = row[static_cast<pqxx::row::size_type>(runtime::kEnvelopeColumnCount)];
    if (!alias.is_null()) te.stream_alias = alias.as<std::string>();
    by_id.emplace(te.id, te.event.global_seq);
    out.events.push_back(std::move(te));
  }
  for (auto& te : out.events) {
    if (!te.event.causation_id) continue;
    const auto it = by_id.find(*te.event.causation_id);
    // A cause later in the feed than its effect cannot be one (ids were reused): a root then.
    if (it != by_id.end() && it->second < te.event.global_seq) te.caused_by = it->second;
  }
  return out;
}

}  // namespace rillflow
