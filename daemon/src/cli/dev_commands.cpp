// dev-postgres: a throwaway PostgreSQL for trying Rillflow out.

#include "cli/cli_context.hpp"

#include <csignal>
#include <iostream>

namespace rillflow::cli {

void add_dev_commands(CLI::App& app, Context& ctx) {
  static bool tcp = false;
  auto* dev = app.add_subcommand(
      "dev-postgres",
      "Start an embedded PostgreSQL (deleted on exit), print its URL, run until SIGINT/SIGTERM");
  dev->add_flag("--tcp", tcp, "Also listen on 127.0.0.1 (a free port) besides the private socket");
  dev->callback([&ctx] {
    ctx.run = [] {
      sigset_t stop;
      sigemptyset(&stop);
      sigaddset(&stop, SIGINT);
      sigaddset(&stop, SIGTERM);
      sigprocmask(SIG_BLOCK, &stop, nullptr);
      auto pg = EmbeddedPostgres::start({.tcp = tcp});
      std::cout << pg.url() << std::endl;
      int sig = 0;
      sigwait(&stop, &sig);
      pg.stop();
      return 0;
    };
  });
}

}  // namespace rillflow::cli
