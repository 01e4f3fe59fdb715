#include <rillflow/events/event.hpp>

#include <cstdio>
#include <ctime>

namespace rillflow {

std::string Expected::to_string() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no_stream";
    case Kind::kStreamExists:
      return "stream_exists";
    case Kind::kExact:
      return "exact(" + std::to_string(version_) + ")";
  }
  return "?";
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(us / 1000000);
  auto frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(frac));
  return buf;
}

Json to_json(const EventEnvelope& e) {
  auto opt = [](const std::optional<Uuid>& id) {
    return id ? Json(to_string(*id)) : Json(nullptr);
  };
  return boost::json::object{{"global_seq", e.global_seq},
                             {"stream_id", to_string(e.stream_id)},
                             {"stream_seq", e.stream_seq},
                             {"type", e.type},
                             {"body", e.body},
                             {"headers", e.headers},
                             {"causation_id", opt(e.causation_id)},
                             {"correlation_id", opt(e.correlation_id)},
                             {"created_at", format_timestamp(e.created_at)}};
}

}  // namespace rillflow
