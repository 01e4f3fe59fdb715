#pragma once
// HTTP routing as a pure function: request line in, response out, no sockets (unit-tested).

#include "status/status.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rillflow::http {

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra response headers
};

/// GET / (the status page), /health/live, /health/ready, /metrics, /status. `metrics_text` renders
/// the Prometheus exposition (called only for /metrics).
Response route(std::string_view method, std::string_view target,
               const status::StatusSnapshot& status,
               const std::function<std::string()>& metrics_text);

/// The /status document.
std::string status_json(const status::StatusSnapshot& status);

}  // namespace rillflow::http
