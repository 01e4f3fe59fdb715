#!/bin/sh
# Container entrypoint for the rillflowd image.
#
#   (no arguments) or flags  ->  rillflowd --check-config FLAGS, then exec rillflowd FLAGS
#   --version | --help | --check-config among the flags  ->  just run rillflowd with them
#   a command (rillflow ..., sh, ...)  ->  exec that command instead (admin CLI in the same image)
#
# The config check runs first so that a bad config or a plugin that does not load fails the
# container at once, with the offending key path as the last log line, instead of after the
# daemon has started connecting. `exec` makes rillflowd PID 1: it receives SIGTERM itself and
# drains (it starts no child processes, so no init is needed for reaping).
#
# RILLFLOW_SKIP_CHECK_CONFIG=1 skips the pre-check (the daemon validates the config anyway).
set -eu

daemon=/usr/bin/rillflowd

case "${1:-}" in
  "" | -*) ;;      # no arguments or rillflowd flags: handled below
  *) exec "$@" ;;  # any other command, e.g. `docker run IMAGE rillflow projections status`
esac

for arg in "$@"; do
  case "$arg" in
    --version | --help | -h | --check-config) exec "$daemon" "$@" ;;
  esac
done

if [ "${RILLFLOW_SKIP_CHECK_CONFIG:-0}" != 1 ]; then
  if ! "$daemon" --check-config "$@"; then
    echo "docker-entrypoint: rillflowd --check-config failed (see above); not starting" >&2
    exit 1
  fi
fi

exec "$daemon" "$@"
