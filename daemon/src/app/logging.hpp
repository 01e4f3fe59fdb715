#pragma once
// spdlog set up from the config: text lines (terminals, journald) or one JSON object per line
// (Kubernetes log pipelines), on stderr.

#include "config/config.hpp"

namespace rillflow::app {

void setup_logging(const config::LoggingConfig& logging);
/// Applies a new level (SIGHUP).
void set_log_level(const std::string& level);

}  // namespace rillflow::app
