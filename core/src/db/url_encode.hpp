#pragma once
// Percent-encoding for the parts of a libpq URL. Private to rillflow::core (and its tests).

#include <string>

namespace rillflow::db {

/// `s` percent-encoded for a URL (everything but letters, digits and -_.~).
std::string percent_encode(const std::string& s);

}  // namespace rillflow::db
