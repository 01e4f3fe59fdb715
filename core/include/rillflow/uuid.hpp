#pragma once
// Stream and document identifiers are RFC 4122 UUIDs (Boost.Uuid).

#include <boost/uuid/uuid.hpp>

#include <string>
#include <string_view>

namespace rillflow {

using Uuid = boost::uuids::uuid;

/// A new random (version 4) UUID. Thread-safe.
Uuid new_uuid();
/// Parses the canonical 36-character form. Throws rillflow::Error (kInvalidArgument).
Uuid parse_uuid(std::string_view text);
/// The canonical lower-case 36-character form.
std::string to_string(const Uuid& id);

}  // namespace rillflow
