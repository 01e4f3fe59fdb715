// projections run-loop --use-notify true|false --health-bind HOST:PORT: rillflowd's own loop in
// the foreground (scheduler, LISTEN, /health, /health/ready, /metrics and /status on the bind)
// until SIGTERM/SIGINT, then a drain and exit 0. It is rillflowd's Application, not a copy: the
// projections of --config, the database of --database-url (or the config's), the schema of
// --schema (or the config's).

#include "app/application.hpp"
#include "app/logging.hpp"
#include "cli/cli_context.hpp"

namespace rillflow::cli {

namespace {

// "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces).
std::pair<std::string, std::int64_t> parse_bind(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos)
    throw UsageError("--health-bind: expected HOST:PORT, got " + text);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const auto port_text = text.substr(colon + 1);
  std::size_t used = 0;
  long port = -1;
  try {
    port = std::stol(port_text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (port_text.empty() || used != port_text.size() || port < 0 || port > 65535)
    throw UsageError("--health-bind: the port must be 0 to 65535, got '" + port_text + "'");
  return {host, port};
}

}  // namespace

void add_run_loop_command(CLI::App& app, Context& ctx) {
  auto* group = app.get_subcommand("projections");
  static std::string use_notify = "true";
  static std::string health_bind = "127.0.0.1:8080";
  auto* sub = group->add_subcommand(
      "run-loop",
      "Run the projections of --config in the foreground, as rillflowd does (scheduler, LISTEN, "
      "/health/ready and /metrics on --health-bind) until SIGTERM/SIGINT; exit 0 once drained");
  sub->add_option("--use-notify", use_notify,
                  "Wake up on LISTEN/NOTIFY (true) or only poll (false)")
      ->check(CLI::IsMember({"true", "false"}))
      ->capture_default_str();
  sub->add_option("--health-bind", health_bind,
                  "HOST:PORT of the HTTP endpoints (port 0: a free one)")
      ->capture_default_str();
  sub->callback([&ctx] {
    ctx.run = [&ctx] {
      auto cfg = ctx.config();
      if (cfg.projections.empty())
        throw UsageError("run-loop runs projections: pass --config with a projection registry");
      const auto [host, port] = parse_bind(health_bind);
      cfg.http.bind = host;
      cfg.http.port = port;
      cfg.daemon.notify = use_notify == "true";
      cfg.schema = ctx.effective_schema();
      if (!ctx.tenant.empty()) {  // projections --tenant NAME run-loop: that tenant only
        cfg.tenants = config::TenantsConfig{};
        cfg.tenants.enabled = true;
        cfg.tenants.names = {ctx.tenant};
      }
      std::optional<std::string> url;
      if (!ctx.database_url.empty()) url = ctx.database_url;
      app::setup_logging(cfg.logging);
      app::Application application(std::move(cfg), ctx.config_path, url);
      return application.run();
    };
  });
}

}  // namespace rillflow::cli
