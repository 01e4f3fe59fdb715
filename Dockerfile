# rillflowd container image: the daemon, the rillflow admin CLI, the example projection plugin and
# an example config, on debian:12-slim with runtime libraries only, running as UID 10001.
#
#   docker build -t rillflowd:dev .
#   docker run --rm -p 8080:8080 --stop-timeout 45 \
#     -e DATABASE_URL='postgresql://user:pass@db:5432/app' rillflowd:dev
#   (Docker's default stop timeout, 10 s, is shorter than the 30 s drain deadline.)
#   docker run --rm -e DATABASE_URL=... rillflowd:dev rillflow --help      # the admin CLI
#
# Own config: mount a directory holding rillflowd.yaml at /etc/rillflow (-v "$PWD/conf:/etc/rillflow:ro"),
# or pass --config PATH. Kubernetes: deploy/ (deploy/README.md).

# ---- build ---------------------------------------------------------------------------------
FROM debian:12 AS build

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The build dependencies are exactly what the test suite installs: scripts/setup is the one list
# (copied alone first, so this layer is cached until the list changes).
COPY scripts/setup /tmp/rillflow-setup
RUN apt-get update && bash /tmp/rillflow-setup && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# `-j` alone would mean "no limit" with make; the Asio/Beast translation units need ~1 GB each.
ARG BUILD_JOBS=""
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRILLFLOW_BUILD_TESTS=OFF -DRILLFLOW_BUILD_BENCH=OFF \
 && cmake --build build -j "${BUILD_JOBS:-$(nproc)}" \
 && DESTDIR=/staging cmake --install build --prefix /usr --strip

# Pick what the runtime image needs out of the staging tree (no headers, no CMake package files):
# the two programs, the shared library librillflow.so.N they link, and the plugins.
RUN set -eux; \
    cd /staging; \
    for f in usr/bin/rillflowd usr/bin/rillflow usr/lib/rillflow/plugins/librillflow_order_totals.so; do \
      test -e "$f" || { echo "Dockerfile: 'cmake --install' did not install /$f" >&2; exit 1; }; \
    done; \
    libs=$(find usr/lib -name 'librillflow*.so.*'); \
    test -n "$libs" || { echo "Dockerfile: no librillflow*.so.* installed" >&2; exit 1; }; \
    mkdir /runtime; \
    cp -a --parents usr/bin/rillflowd usr/bin/rillflow $libs usr/lib/rillflow /runtime/

# ---- runtime -------------------------------------------------------------------------------
FROM debian:12-slim AS runtime

# Runtime libraries only (the -dev packages' run-time halves). Keep in step with
# tests/deploy/check_runtime_deps.py, which compares this list with what the built binaries link.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libboost-json1.81.0 \
      libfmt9 \
      libpq5 \
      libpqxx-6.4 \
      libprometheus-cpp-core1.0 \
      libspdlog1.10 \
      libsystemd0 \
      libyaml-cpp0.7 \
 && rm -rf /var/lib/apt/lists/*

# A fixed UID/GID so Kubernetes' runAsUser/fsGroup (deploy/deployment.yaml) and volume ownership
# line up with the image.
RUN groupadd --gid 10001 rillflow \
 && useradd --uid 10001 --gid rillflow --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin rillflow

COPY --from=build /runtime/ /
COPY deploy/docker/rillflowd.yaml /etc/rillflow/rillflowd.yaml
COPY deploy/docker/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# Fail the build, not the first start, when a runtime library is missing.
RUN set -eux; \
    chmod 0755 /usr/local/bin/docker-entrypoint.sh; \
    chmod 0644 /etc/rillflow/rillflowd.yaml; \
    ldconfig; \
    if ldd /usr/bin/rillflowd /usr/bin/rillflow /usr/lib/rillflow/plugins/*.so | grep 'not found'; then \
      echo "Dockerfile: missing runtime libraries (above)" >&2; exit 1; \
    fi; \
    rillflowd --version

# Numeric, so Kubernetes can verify runAsNonRoot without looking into /etc/passwd.
USER 10001:10001
WORKDIR /

EXPOSE 8080

# Docker only (Kubernetes uses the probes in deploy/deployment.yaml). No curl in the image: bash's
# /dev/tcp. Set RILLFLOW_HTTP_PORT when the config moves http.port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${RILLFLOW_HTTP_PORT:-8080} && printf 'GET /health/live HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# SIGTERM: drain within daemon.drain_deadline_ms (30 s); use `docker stop -t 45` / --stop-timeout 45.
STOPSIGNAL SIGTERM

# Validates the config (rillflowd --check-config) and then execs rillflowd (PID 1).
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["--config", "/etc/rillflow/rillflowd.yaml"]
