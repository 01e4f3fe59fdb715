#pragma once

namespace rillflow {
/// The library's version, e.g. "0.1.0".
const char* version() noexcept;
}  // namespace rillflow
