#include <rillflow/events/event.hpp>

namespace rillflow {

std::string Expected::to_string() const {
  switch (kind_) {
    case Kind::kAny: return "any";
    case Kind::kNoStream: return "no_stream";
    case Kind::kStreamExists: return "stream_exists";
    case Kind::kExact: return "exact(" + std::to_string(version_) + ")";
  }
  return "?";
}

}  // namespace rillflow
