#!/usr/bin/python3
"""Static checks of everything that deploys rillflowd: deploy/ (Kubernetes manifests, the example
config, the Grafana dashboard), systemd/ and the Dockerfile.

    /usr/bin/python3 tests/deploy/check_manifests.py [--root REPO]

Run it with Debian's Python (/usr/bin/python3): it needs PyYAML from the python3-yaml package.
It checks the values that have to agree across files, which no single tool sees:

  * every YAML file under deploy/ parses (multi-document aware) and is either a Kubernetes object
    or the example rillflowd config;
  * the Deployment serves port 8080 named http, its probes hit /health/live and /health/ready on
    that port, terminationGracePeriodSeconds covers the drain deadline, it runs as non-root UID
    10001 (the Dockerfile's user) with a read-only root, no capabilities and RuntimeDefault
    seccomp, takes DATABASE_URL from Secret rillflow-db key url, and mounts the ConfigMap where
    --config points;
  * the Service, ServiceMonitor and PodMonitor select the pods and scrape /metrics on the port
    named in the Service/Deployment;
  * the ConfigMap's rillflowd.yaml (and the image's copy, which must be identical) uses only known
    keys with values of the right type;
  * every metric the Grafana dashboard queries is one rillflowd exports, and the dashboard has the
    panels operators need;
  * the systemd units are Type=notify with a stop timeout that covers the drain deadline and the
    expected sandboxing, and the template unit matches the plain one;
  * the Dockerfile builds in debian:12 after running scripts/setup (the test suite's package
    list), and runs as UID 10001 on debian:12-slim, port 8080, SIGTERM, through the entrypoint.

Optional extras, run when the tool is on PATH: `promtool check rules` on every dashboard query,
and `kubectl kustomize deploy/` (a full kustomize build).

Exit status: 0 when every check passed, 1 when any failed (each failure printed), 2 on a usage or
environment problem.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem, not a check failure
    sys.stderr.write(
        "check_manifests: PyYAML is missing. Run with /usr/bin/python3 (Debian's Python) and "
        "install python3-yaml (scripts/setup does).\n")
    sys.exit(2)

# ---- facts about rillflowd ----------------------------------------------------------------------

# The metrics rillflowd exports (/metrics). The daemon's own test checks the same list against a
# real scrape; keep the two in step when a metric is added or renamed.
EXPECTED_METRICS = {
    "rillflow_events_processed_total",
    "rillflow_projection_lag_events",
    "rillflow_projection_lag_seconds",
    "rillflow_projection_batch_duration_seconds",
    "rillflow_projection_dlq_depth",
    "rillflow_projection_dlq_oldest_age_seconds",
    "rillflow_projection_retries_total",
    "rillflow_projection_lease_owned",
    "rillflow_projection_paused",
    "rillflow_wakeups_total",
    "rillflow_db_pool_connections",
    "rillflow_ready",
    "rillflow_build_info",
    "rillflow_process_resident_memory_bytes",
    "rillflow_process_start_time_seconds",
    "rillflow_snapshotter_runs_total",
    "rillflow_snapshotter_candidates_total",
    "rillflow_snapshots_written_total",
    "rillflow_snapshotter_failures_total",
    "rillflow_snapshotter_run_duration_seconds",
    "rillflow_snapshotter_max_events_since_snapshot",
    "rillflow_consumer_blocked_seconds",
}
# Histograms are queried through their _bucket/_sum/_count series.
HISTOGRAMS = {"rillflow_projection_batch_duration_seconds", "rillflow_snapshotter_run_duration_seconds"}

HTTP_PORT = 8080
LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
METRICS_PATH = "/metrics"
DEFAULT_DRAIN_DEADLINE_S = 30  # daemon.drain_deadline_ms default
RUNTIME_UID = 10001
DB_SECRET_NAME, DB_SECRET_KEY = "rillflow-db", "url"
CONFIG_DIR = "/etc/rillflow"
CONFIG_FILE = CONFIG_DIR + "/rillflowd.yaml"
IMAGE_CONFIG_SOURCE = "deploy/docker/rillflowd.yaml"
ENTRYPOINT_SOURCE = "deploy/docker/docker-entrypoint.sh"

# rillflowd.yaml's keys, read from the daemon's own key table, never copied here: the JSON of
# `rillflowd --print-config-schema` when --rillflowd is given, else the same table as generated
# into config/README.md (rillflow config reference). A dict is a map with exactly these keys
# (others are rejected, as the daemon rejects them), [schema] a list of such items, a tuple a
# choice of strings, `dict` a free-form map.
def schema_type(text):
    text = text.strip()
    if "|" in text:
        return tuple(part.strip() for part in text.split("|"))
    return {"string": str, "path": str, "integer": int, "boolean": bool, "map": dict,
            "list of strings": [str], "list": [{}]}.get(text, str)


def schema_from_rows(rows):
    """{"a": {"b": type}} from (key path, type text) rows of the daemon's key table."""
    schema = {}
    for key, type_text in rows:
        node = schema
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part.endswith("[]"):
                node = node.setdefault(part[:-2], [{}])[0]
            elif last:
                node.setdefault(part, schema_type(type_text))
            else:
                node = node.setdefault(part, {})
    return schema


def table_rows_from_reference(root):
    """(key, type) rows of config/README.md's generated table; [] when it is missing."""
    try:
        with open(os.path.join(root, "config", "README.md"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\| `([a-z_][a-z0-9_.\[\]]*)` \| (.*?) \| ", line.replace("\\|", "\x00"))
        if m:
            rows.append((m.group(1), m.group(2).replace("\x00", "|")))
    return rows


def table_rows_from_daemon(rillflowd):
    out = subprocess.run([rillflowd, "--print-config-schema"], check=True, capture_output=True,
                         text=True).stdout
    return [(k["key"], k["type"]) for k in json.loads(out)["keys"]]


LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
CONFIG_SCHEMA = schema_from_rows(table_rows_from_reference(
    os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))))
REQUIRED_PROJECTION_KEYS = ("name", "plugin")


# ---- the check collector ------------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.passed = 0
        self.failures = []

    def ok(self, cond, what, detail=""):
        """Records one check; `what` says what must hold, `detail` what was found instead."""
        if cond:
            self.passed += 1
        else:
            self.failures.append(what + (": " + detail if detail else ""))
        return bool(cond)

    def fail(self, what, detail=""):
        return self.ok(False, what, detail)


def rel(root, path):
    return os.path.relpath(path, root)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- YAML and config ----------------------------------------------------------------------------

def load_yaml_docs(c, root, path):
    """All non-empty documents of a YAML file, or None when it does not parse."""
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        c.fail(f"{rel(root, path)} parses as YAML", str(e).replace("\n", " "))
        return None


def type_name(value):
    return {dict: "a map", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def validate_config(c, where, value, schema=CONFIG_SCHEMA, path=""):
    """Walks `value` against CONFIG_SCHEMA; every problem names the key path, like the daemon."""
    label = path or "(top level)"
    if isinstance(schema, dict):
        if not c.ok(isinstance(value, dict), f"{where}: {label} is a map", f"got {type_name(value)}"):
            return
        for key, sub in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            if c.ok(key in schema, f"{where}: only known config keys are used",
                    f"unknown key '{key_path}' (known here: {', '.join(schema)})"):
                validate_config(c, where, sub, schema[key], key_path)
    elif isinstance(schema, list):
        if not c.ok(isinstance(value, list), f"{where}: {label} is a list", f"got {type_name(value)}"):
            return
        for i, item in enumerate(value):
            validate_config(c, where, item, schema[0], f"{path}[{i}]")
            if schema[0] is CONFIG_SCHEMA["projections"][0] and isinstance(item, dict):
                for key in REQUIRED_PROJECTION_KEYS:
                    c.ok(item.get(key), f"{where}: {path}[{i}].{key} is set")
    elif isinstance(schema, tuple):
        c.ok(value in schema, f"{where}: {label} is one of {', '.join(schema)}", f"got {value!r}")
    elif schema is bool:
        c.ok(isinstance(value, bool), f"{where}: {label} is true or false", f"got {value!r}")
    elif schema is int:
        c.ok(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
             f"{where}: {label} is a non-negative integer", f"got {value!r}")
    elif schema is str:
        c.ok(isinstance(value, str) and value != "", f"{where}: {label} is a non-empty string",
             f"got {value!r}")
    elif schema is dict:
        c.ok(isinstance(value, dict), f"{where}: {label} is a map", f"got {type_name(value)}")


def config_get(config, dotted, default):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def check_config_semantics(c, where, config):
    """Values that parse but would not work where the manifests put the daemon."""
    if not isinstance(config, dict):
        return
    c.ok(config_get(config, "http.port", HTTP_PORT) == HTTP_PORT, f"{where}: http.port is {HTTP_PORT}",
         f"got {config_get(config, 'http.port', None)!r}")
    c.ok(config_get(config, "http.bind", "0.0.0.0") in ("0.0.0.0", "::"),
         f"{where}: http.bind listens on all addresses (probes come from the kubelet)",
         f"got {config_get(config, 'http.bind', None)!r}")
    c.ok(config_get(config, "database.url_env", "DATABASE_URL") == "DATABASE_URL",
         f"{where}: database.url_env is DATABASE_URL (the variable the Deployment and systemd set)")
    projections = config.get("projections") or []
    c.ok(isinstance(projections, list) and len(projections) > 0, f"{where}: at least one projection is configured")
    for i, p in enumerate(projections if isinstance(projections, list) else []):
        if not isinstance(p, dict):
            continue
        plugin = p.get("plugin", "")
        c.ok(isinstance(plugin, str) and plugin.startswith("/") and plugin.endswith(".so"),
             f"{where}: projections[{i}].plugin is an absolute path to a .so", f"got {plugin!r}")
        retry = p.get("retry") or {}
        if isinstance(retry, dict) and "base_delay_ms" in retry and "max_delay_ms" in retry:
            c.ok(retry["max_delay_ms"] >= retry["base_delay_ms"],
                 f"{where}: projections[{i}].retry.max_delay_ms is not below base_delay_ms")
    names = [p.get("name") for p in projections if isinstance(p, dict)] if isinstance(projections, list) else []
    c.ok(len(names) == len(set(names)), f"{where}: projection names are unique", f"got {names}")


def reference_keys(root):
    """Key paths of the daemon's generated reference table (config/README.md), when present."""
    path = os.path.join(root, "config", "README.md")
    try:
        text = read_text(path)
    except OSError:
        return None
    keys = set(re.findall(r"^\| `([a-z_][a-z0-9_.\[\]]*)` \|", text, re.M))
    return keys or None


def used_key_paths(value, schema=CONFIG_SCHEMA, path=""):
    out = set()
    if isinstance(schema, dict) and isinstance(value, dict):
        for key, sub in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in schema:
                continue
            if isinstance(schema[key], (dict, list)) and schema[key] is not dict:
                inner = used_key_paths(sub, schema[key], key_path)
                out |= inner if inner else {key_path}
            else:
                out.add(key_path)
    elif isinstance(schema, list) and isinstance(value, list):
        for item in value:
            out |= used_key_paths(item, schema[0], path + "[]")
    return out


# ---- systemd ------------------------------------------------------------------------------------

def parse_unit(text):
    """{section: [(key, value), ...]} of a unit file (repeated keys kept in order)."""
    sections, current, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections.setdefault(current, []).append((key.strip(), value.strip()))
    return sections


def unit_value(unit, section, key):
    values = [v for k, v in unit.get(section, []) if k == key]
    return values[-1] if values else None


def timespan_seconds(text):
    """systemd time span ('45', '45s', '1min 30s', '500ms') in seconds, or None."""
    if text is None:
        return None
    units = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1, "s": 1, "sec": 1, "second": 1,
             "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600,
             "hour": 3600, "hours": 3600}
    total, parts = 0.0, re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip())
    if not parts or re.sub(r"[\d.\sa-z]", "", text.strip()):
        return None
    for number, unit in parts:
        if unit not in units:
            return None
        total += float(number) * units[unit]
    return total


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
}


def check_unit(c, name, unit, config_path, env_path):
    svc = "Service"
    c.ok(unit_value(unit, svc, "Type") == "notify", f"{name}: Type=notify", f"got {unit_value(unit, svc, 'Type')!r}")
    pre = unit_value(unit, svc, "ExecStartPre") or ""
    c.ok(pre == f"/usr/bin/rillflowd --check-config --config {config_path}",
         f"{name}: ExecStartPre=/usr/bin/rillflowd --check-config --config {config_path}", f"got {pre!r}")
    start = unit_value(unit, svc, "ExecStart") or ""
    c.ok(start == f"/usr/bin/rillflowd --config {config_path}",
         f"{name}: ExecStart=/usr/bin/rillflowd --config {config_path}", f"got {start!r}")
    c.ok(unit_value(unit, svc, "ExecReload") == "/bin/kill -HUP $MAINPID", f"{name}: ExecReload sends SIGHUP")
    stop = timespan_seconds(unit_value(unit, svc, "TimeoutStopSec"))
    c.ok(stop is not None and stop >= DEFAULT_DRAIN_DEADLINE_S,
         f"{name}: TimeoutStopSec >= {DEFAULT_DRAIN_DEADLINE_S} s (the daemon's default drain deadline)",
         f"got {unit_value(unit, svc, 'TimeoutStopSec')!r}")
    watchdog = timespan_seconds(unit_value(unit, svc, "WatchdogSec"))
    c.ok(watchdog is not None and watchdog > 0, f"{name}: WatchdogSec is set")
    c.ok(unit_value(unit, svc, "Restart") == "on-failure", f"{name}: Restart=on-failure")
    c.ok(unit_value(unit, svc, "User") == "rillflow", f"{name}: User=rillflow")
    c.ok(unit_value(unit, svc, "DynamicUser") in (None, "no"), f"{name}: not DynamicUser")
    c.ok(unit_value(unit, svc, "EnvironmentFile") == "-" + env_path, f"{name}: EnvironmentFile=-{env_path}",
         f"got {unit_value(unit, svc, 'EnvironmentFile')!r}")
    for key, want in HARDENING.items():
        got = unit_value(unit, svc, key)
        c.ok(got == want, f"{name}: {key}={want}", f"got {got!r}")
    families = set((unit_value(unit, svc, "RestrictAddressFamilies") or "").split())
    c.ok(families == {"AF_UNIX", "AF_INET", "AF_INET6"}, f"{name}: RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
         f"got {sorted(families)}")
    c.ok(unit_value(unit, "Install", "WantedBy") == "multi-user.target", f"{name}: WantedBy=multi-user.target")


def check_systemd(c, root):
    sd = os.path.join(root, "systemd")
    units = {}
    for name in ("rillflowd.service", "rillflowd@.service"):
        try:
            units[name] = read_text(os.path.join(sd, name))
        except OSError as e:
            c.fail(f"systemd/{name} exists", str(e))
    if "rillflowd.service" in units:
        check_unit(c, "systemd/rillflowd.service", parse_unit(units["rillflowd.service"]),
                   CONFIG_FILE, CONFIG_DIR + "/rillflowd.env")
    if "rillflowd@.service" in units:
        template = parse_unit(units["rillflowd@.service"])
        check_unit(c, "systemd/rillflowd@.service", template, CONFIG_DIR + "/%i.yaml", CONFIG_DIR + "/%i.env")
        if "rillflowd.service" in units:
            # The template is the plain unit with the instance name substituted; nothing else may drift.
            plain = parse_unit(units["rillflowd.service"])
            mapped = parse_unit(units["rillflowd@.service"]
                                .replace(CONFIG_DIR + "/%i.yaml", CONFIG_FILE)
                                .replace(CONFIG_DIR + "/%i.env", CONFIG_DIR + "/rillflowd.env")
                                .replace("rillflowd-%i", "rillflowd")
                                .replace(" (%i)", ""))
            diff = [f"[{s}] {k}={v}" for s in set(plain) | set(mapped)
                    for (k, v) in set(plain.get(s, [])) ^ set(mapped.get(s, []))]
            c.ok(not diff, "systemd/rillflowd@.service matches rillflowd.service but for the instance name",
                 "differs in " + "; ".join(sorted(diff)))
    try:
        sysusers = read_text(os.path.join(sd, "rillflow.sysusers.conf"))
        c.ok(re.search(r"^u\s+rillflow\s", sysusers, re.M),
             "systemd/rillflow.sysusers.conf creates user rillflow (User= of the units)")
    except OSError as e:
        c.fail("systemd/rillflow.sysusers.conf exists", str(e))


# ---- Dockerfile ---------------------------------------------------------------------------------

def parse_dockerfile(text):
    """Stages as dicts {image, name, instructions: [(INSTRUCTION, args)]}; continuations joined,
    comment lines dropped (as Docker does, also inside a continued instruction)."""
    stages, logical, pending = [], [], None
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending is None):
            continue
        pending = (pending + " " if pending is not None else "") + stripped.rstrip("\\").strip()
        if stripped.endswith("\\"):
            continue
        logical.append(pending)
        pending = None
    if pending:
        logical.append(pending)
    for line in logical:
        instr, _, args = line.partition(" ")
        instr, args = instr.upper(), args.strip()
        if instr == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append({"image": words[0] if words else "", "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((instr, args))
    return stages


def exec_form(args):
    """The argv of an exec-form (JSON) or shell-form instruction argument."""
    try:
        value = json.loads(args)
        if isinstance(value, list):
            return [str(v) for v in value]
    except ValueError:
        pass
    return shlex.split(args)


def check_dockerfile(c, root):
    path = os.path.join(root, "Dockerfile")
    try:
        stages = parse_dockerfile(read_text(path))
    except OSError as e:
        c.fail("Dockerfile exists", str(e))
        return
    if not c.ok(len(stages) >= 2, "Dockerfile is multi-stage (build + runtime)", f"{len(stages)} stage(s)"):
        return
    build, runtime = stages[0], stages[-1]
    c.ok(re.fullmatch(r"debian:12(@sha256:[0-9a-f]{64})?", build["image"]), "Dockerfile: build stage is FROM debian:12",
         f"got {build['image']!r}")
    c.ok(re.fullmatch(r"debian:12-slim(@sha256:[0-9a-f]{64})?", runtime["image"]),
         "Dockerfile: runtime stage is FROM debian:12-slim", f"got {runtime['image']!r}")

    # Build stage: scripts/setup copied in and run before the cmake build.
    setup_paths = {"scripts/setup", "./scripts/setup", "/src/scripts/setup"}
    for instr, args in build["instructions"]:
        if instr == "COPY":
            words = [w for w in exec_form(args) if not w.startswith("--")]
            if len(words) >= 2 and any(os.path.normpath(w) == "scripts/setup" for w in words[:-1]):
                dest = words[-1]
                setup_paths.add(dest.rstrip("/") + "/setup" if dest.endswith("/") else dest)
    runs = [args for instr, args in build["instructions"] if instr == "RUN"]
    setup_run = next((i for i, r in enumerate(runs) if any(re.search(r"(^|[\s;&|(])" + re.escape(p) + r"($|[\s;&|)])", r)
                                                           for p in setup_paths)), None)
    cmake_run = next((i for i, r in enumerate(runs) if "cmake -S" in r), None)
    c.ok(setup_run is not None, "Dockerfile: the build stage runs scripts/setup (the test suite's package list)",
         "no RUN executes " + " or ".join(sorted(setup_paths)))
    c.ok(cmake_run is not None, "Dockerfile: the build stage configures with cmake -S")
    if setup_run is not None and cmake_run is not None:
        c.ok(setup_run <= cmake_run, "Dockerfile: scripts/setup runs before the cmake build")
    if cmake_run is not None:
        cmd = runs[cmake_run]
        for flag in ("-DCMAKE_BUILD_TYPE=Release", "-DRILLFLOW_BUILD_TESTS=OFF", "-DRILLFLOW_BUILD_BENCH=OFF"):
            c.ok(flag in cmd, f"Dockerfile: cmake configure passes {flag}")
        c.ok(re.search(r"cmake --install \S+.*--prefix /usr\b", cmd), "Dockerfile: cmake --install ... --prefix /usr")

    # Runtime stage.
    instrs = runtime["instructions"]
    runtime_runs = " ".join(a for i, a in instrs if i == "RUN")
    c.ok(not any(p in runtime_runs for p in setup_paths), "Dockerfile: the runtime stage does not run scripts/setup")
    installed = apt_packages(runtime_runs)
    c.ok(installed and not [p for p in installed if p.endswith("-dev")],
         "Dockerfile: the runtime stage installs runtime packages only (no -dev)", f"got {installed}")
    users = [a for i, a in instrs if i == "USER"]
    c.ok(users and users[-1].split(":")[0] == str(RUNTIME_UID),
         f"Dockerfile: runtime USER is the numeric UID {RUNTIME_UID} (Kubernetes runAsNonRoot needs a number)",
         f"got {users[-1] if users else None!r}")
    c.ok(re.search(rf"useradd\b[^&;]*--uid {RUNTIME_UID}\b[^&;]*\brillflow\b", runtime_runs),
         f"Dockerfile: creates user rillflow with UID {RUNTIME_UID}")
    exposed = " ".join(a for i, a in instrs if i == "EXPOSE").split()
    c.ok(str(HTTP_PORT) in [p.split("/")[0] for p in exposed], f"Dockerfile: EXPOSE {HTTP_PORT}", f"got {exposed}")
    stopsignal = [a for i, a in instrs if i == "STOPSIGNAL"]
    c.ok(stopsignal and stopsignal[-1] in ("SIGTERM", "15"), "Dockerfile: STOPSIGNAL SIGTERM")
    copies = [[w for w in exec_form(a) if not w.startswith("--")] for i, a in instrs if i == "COPY"]
    c.ok(any(w[:-1] == [IMAGE_CONFIG_SOURCE] and w[-1] == CONFIG_FILE for w in copies if len(w) >= 2),
         f"Dockerfile: COPY {IMAGE_CONFIG_SOURCE} {CONFIG_FILE}")
    entry = [a for i, a in instrs if i == "ENTRYPOINT"]
    entry_argv = exec_form(entry[-1]) if entry else []
    entry_copied = [w[-1] for w in copies if len(w) >= 2 and w[:-1] == [ENTRYPOINT_SOURCE]]
    c.ok(entry_argv and entry_copied and entry_argv[0] == entry_copied[0],
         f"Dockerfile: ENTRYPOINT runs {ENTRYPOINT_SOURCE} (copied into the image)", f"got {entry_argv}")
    try:
        script = read_text(os.path.join(root, ENTRYPOINT_SOURCE))
        c.ok("--check-config" in script and re.search(r"^\s*exec \"\$daemon\" \"\$@\"", script, re.M),
             f"{ENTRYPOINT_SOURCE}: runs rillflowd --check-config, then execs rillflowd")
        c.ok(os.access(os.path.join(root, ENTRYPOINT_SOURCE), os.X_OK), f"{ENTRYPOINT_SOURCE} is executable")
    except OSError as e:
        c.fail(f"{ENTRYPOINT_SOURCE} exists", str(e))

    try:
        ignore = read_text(os.path.join(root, ".dockerignore")).split("\n")
        patterns = {p.strip() for p in ignore if p.strip() and not p.startswith("#")}
        c.ok({"build", ".git"} <= patterns, ".dockerignore excludes build/ and .git", f"got {sorted(patterns)}")
        c.ok(not {"scripts", "scripts/*", "deploy", "deploy/*", "**/build"} & patterns,
             ".dockerignore keeps scripts/ and deploy/ (the Dockerfile copies from them)")
    except OSError as e:
        c.fail(".dockerignore exists", str(e))


def apt_packages(shell_text):
    """Package names after `apt-get install` in a shell command line."""
    out = []
    for m in re.finditer(r"apt-get\s+install\s+([^;&|]*)", shell_text):
        out += [w for w in m.group(1).split() if not w.startswith("-")]
    return out


# ---- Kubernetes ---------------------------------------------------------------------------------

def labels_match(selector, labels):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def resolve_port(port, container_ports):
    """A probe/target port (number or name) as a number, or None."""
    if isinstance(port, int):
        return port
    for p in container_ports:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_kubernetes(c, root, objects, config_maps_text):
    def only(kind, api=None):
        found = [(f, o) for f, o in objects if o.get("kind") == kind and (api is None or o.get("apiVersion") == api)]
        c.ok(len(found) == 1, f"deploy/: exactly one {kind}", f"found {len(found)}")
        return found[0][1] if len(found) == 1 else None

    deployment = only("Deployment", "apps/v1")
    service = only("Service", "v1")
    configmap = only("ConfigMap", "v1")
    servicemonitor = only("ServiceMonitor", "monitoring.coreos.com/v1")
    podmonitor = only("PodMonitor", "monitoring.coreos.com/v1")
    secrets = [(f, o) for f, o in objects if o.get("kind") == "Secret"]

    if deployment is None:
        return
    spec = deployment.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    c.ok(labels_match(spec.get("selector", {}).get("matchLabels"), pod_labels),
         "Deployment: selector matches the pod template's labels")
    c.ok(isinstance(spec.get("replicas"), int) and spec["replicas"] >= 2,
         "Deployment: at least 2 replicas (leases split the projections)", f"got {spec.get('replicas')!r}")
    containers = pod.get("containers", [])
    container = next((x for x in containers if x.get("name") == "rillflowd"), None)
    if not c.ok(container is not None, "Deployment: has a container named rillflowd"):
        return
    ports = container.get("ports", [])
    http = [p for p in ports if p.get("name") == "http"]
    c.ok(len(http) == 1 and http[0].get("containerPort") == HTTP_PORT,
         f"Deployment: container port {HTTP_PORT} named http", f"got {ports}")
    port_names = {p.get("name") for p in ports}

    for probe_name, want in (("livenessProbe", LIVE_PATH), ("readinessProbe", READY_PATH), ("startupProbe", LIVE_PATH)):
        probe = container.get(probe_name)
        if probe is None and probe_name == "startupProbe":
            continue  # optional
        get = (probe or {}).get("httpGet", {})
        c.ok(get.get("path") == want, f"Deployment: {probe_name} is GET {want}", f"got {get.get('path')!r}")
        c.ok(resolve_port(get.get("port"), ports) == HTTP_PORT, f"Deployment: {probe_name} uses port {HTTP_PORT}",
             f"got {get.get('port')!r}")

    # Drain: the kubelet must wait at least as long as the daemon may drain.
    drain_s = DEFAULT_DRAIN_DEADLINE_S
    for _, text in config_maps_text:
        config = safe_yaml(text)
        drain_s = max(drain_s, config_get(config, "daemon.drain_deadline_ms", 30000) / 1000.0)
    grace = pod.get("terminationGracePeriodSeconds")
    c.ok(isinstance(grace, int) and grace >= drain_s,
         f"Deployment: terminationGracePeriodSeconds >= {drain_s:g} (the drain deadline)", f"got {grace!r}")

    # Security.
    psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
    c.ok(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "Deployment: runAsNonRoot: true")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    c.ok(uid == RUNTIME_UID, f"Deployment: runAsUser {RUNTIME_UID} (the image's user)", f"got {uid!r}")
    c.ok(csc.get("readOnlyRootFilesystem") is True, "Deployment: readOnlyRootFilesystem: true")
    c.ok(csc.get("allowPrivilegeEscalation") is False, "Deployment: allowPrivilegeEscalation: false")
    c.ok(csc.get("capabilities", {}).get("drop") == ["ALL"], "Deployment: capabilities drop ALL",
         f"got {csc.get('capabilities')!r}")
    seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {}))
    c.ok(seccomp.get("type") == "RuntimeDefault", "Deployment: seccompProfile RuntimeDefault")
    resources = container.get("resources", {})
    c.ok(resources.get("requests", {}).get("cpu") and resources.get("requests", {}).get("memory")
         and resources.get("limits", {}).get("memory"), "Deployment: cpu/memory requests and a memory limit")

    # The database URL from the Secret, under the name the config reads.
    env = {e.get("name"): e for e in container.get("env", [])}
    url_env = "DATABASE_URL"
    for _, text in config_maps_text:
        url_env = config_get(safe_yaml(text), "database.url_env", url_env)
    ref = env.get(url_env, {}).get("valueFrom", {}).get("secretKeyRef", {})
    c.ok(ref.get("name") == DB_SECRET_NAME and ref.get("key") == DB_SECRET_KEY,
         f"Deployment: env {url_env} comes from Secret {DB_SECRET_NAME} key {DB_SECRET_KEY}", f"got {ref!r}")
    for f, s in secrets:
        c.ok(os.path.basename(f) == "secret.example.yaml", "deploy/: the only Secret is secret.example.yaml",
             f"found one in {f}")
        data = dict(s.get("stringData") or {}, **(s.get("data") or {}))
        c.ok(s.get("metadata", {}).get("name") == DB_SECRET_NAME and DB_SECRET_KEY in data,
             f"{f}: shows Secret {DB_SECRET_NAME} with key {DB_SECRET_KEY}")

    # The config: ConfigMap mounted at /etc/rillflow, --config pointing into it.
    args = container.get("args", []) + container.get("command", [])
    config_arg = args[args.index("--config") + 1] if "--config" in args[:-1] else CONFIG_FILE
    mounts = {m.get("name"): m for m in container.get("volumeMounts", [])}
    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    cm_name = (configmap or {}).get("metadata", {}).get("name")
    cm_volumes = [n for n, v in volumes.items() if v.get("configMap", {}).get("name") == cm_name]
    mount = next((mounts[n] for n in cm_volumes if n in mounts), None)
    c.ok(mount is not None and mount.get("mountPath") == CONFIG_DIR,
         f"Deployment: ConfigMap {cm_name} is mounted at {CONFIG_DIR}", f"got {mount!r}")
    c.ok(mount is None or not mount.get("subPath"), "Deployment: the config is not mounted with subPath (it would never update)")
    c.ok(os.path.dirname(config_arg) == CONFIG_DIR and os.path.basename(config_arg) in (configmap or {}).get("data", {}),
         f"Deployment: --config {config_arg} is a key of the mounted ConfigMap")
    c.ok(container.get("image"), "Deployment: container has an image")

    # Service and monitors.
    if service is not None:
        sspec = service.get("spec", {})
        c.ok(labels_match(sspec.get("selector"), pod_labels), "Service: selector matches the Deployment's pods")
        sports = [p for p in sspec.get("ports", []) if p.get("name") == "http"]
        c.ok(len(sports) == 1 and sports[0].get("port") == HTTP_PORT, f"Service: port {HTTP_PORT} named http",
             f"got {sspec.get('ports')}")
        if sports:
            c.ok(resolve_port(sports[0].get("targetPort", sports[0].get("port")), ports) == HTTP_PORT,
                 "Service: targetPort reaches the container's http port")
        service_port_names = {p.get("name") for p in sspec.get("ports", [])}
        if servicemonitor is not None:
            smspec = servicemonitor.get("spec", {})
            c.ok(labels_match(smspec.get("selector", {}).get("matchLabels"), service.get("metadata", {}).get("labels")),
                 "ServiceMonitor: selector matches the Service's labels")
            endpoints = smspec.get("endpoints", [])
            c.ok(endpoints, "ServiceMonitor: has endpoints")
            for ep in endpoints:
                c.ok(ep.get("port") in service_port_names and ep.get("port") == "http",
                     "ServiceMonitor: scrapes the Service port named http", f"got {ep.get('port')!r}")
                c.ok(ep.get("path") == METRICS_PATH, f"ServiceMonitor: path {METRICS_PATH}", f"got {ep.get('path')!r}")
    if podmonitor is not None:
        pmspec = podmonitor.get("spec", {})
        c.ok(labels_match(pmspec.get("selector", {}).get("matchLabels"), pod_labels),
             "PodMonitor: selector matches the Deployment's pods")
        endpoints = pmspec.get("podMetricsEndpoints", [])
        c.ok(endpoints, "PodMonitor: has podMetricsEndpoints")
        for ep in endpoints:
            c.ok(ep.get("port") in port_names and ep.get("port") == "http",
                 "PodMonitor: scrapes the container port named http", f"got {ep.get('port')!r}")
            c.ok(ep.get("path") == METRICS_PATH, f"PodMonitor: path {METRICS_PATH}", f"got {ep.get('path')!r}")
    for f, o in objects:
        if o.get("kind") == "PodDisruptionBudget":
            c.ok(labels_match(o.get("spec", {}).get("selector", {}).get("matchLabels"), pod_labels),
                 f"{f}: PodDisruptionBudget selects the Deployment's pods")


def safe_yaml(text):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def check_kustomization(c, root, objects_by_file):
    path = os.path.join(root, "deploy", "kustomization.yaml")
    kust = (objects_by_file.get("deploy/kustomization.yaml") or [None])[0]
    if not c.ok(isinstance(kust, dict) and kust.get("kind") == "Kustomization", "deploy/kustomization.yaml is a Kustomization"):
        return
    resources = kust.get("resources", [])
    for r in resources:
        c.ok(os.path.isfile(os.path.join(os.path.dirname(path), r)), f"deploy/kustomization.yaml: resource {r} exists")
    kinds = {o.get("kind") for r in resources for o in objects_by_file.get("deploy/" + r, [])}
    for kind in ("Deployment", "Service", "ConfigMap"):
        c.ok(kind in kinds, f"deploy/kustomization.yaml includes the {kind}")
    c.ok("secret.example.yaml" not in resources, "deploy/kustomization.yaml does not apply secret.example.yaml")
    c.ok(not ({"servicemonitor.yaml", "podmonitor.yaml"} <= set(resources)),
         "deploy/kustomization.yaml applies the ServiceMonitor or the PodMonitor, not both (double scrapes)")
    images = {i.get("name") for i in kust.get("images", [])}
    deployment = next((o for r in resources for o in objects_by_file.get("deploy/" + r, []) if o.get("kind") == "Deployment"), None)
    if deployment and images:
        used = {x.get("image") for x in deployment["spec"]["template"]["spec"].get("containers", [])}
        c.ok(used & images, "deploy/kustomization.yaml: images: names the Deployment's image", f"{used} vs {images}")


# ---- Grafana dashboard and PromQL --------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "offset", "inf", "nan", "atan2"}


def promql_metric_names(expr):
    """Metric names a PromQL expression selects (Grafana $variables allowed)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)  # string literals
    s = re.sub(r"\$\{[^}]*\}|\$\w+", "1", s)  # Grafana variables
    s = re.sub(r"\{[^{}]*\}", "", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)  # range / subquery brackets
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)  # label lists
    s = re.sub(r"\b\d+(\.\d+)?(ms|[smhdwy])\b", " ", s)  # durations (offset 5m)
    s = re.sub(r"(?<![\w.])\d+(\.\d+)?([eE][+-]?\d+)?", " ", s)  # numbers
    names = []
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end():].lstrip().startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue  # a function or aggregation, or a keyword
        names.append(m.group(0))
    return names


def metric_known(name):
    if name in EXPECTED_METRICS:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base != name and base in HISTOGRAMS


def dashboard_queries(dashboard):
    """(where, PromQL) of every panel target (rows' nested panels too) and templating query."""
    out = []

    def walk(panels):
        for p in panels or []:
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    out.append((f"panel {p.get('id')} '{p.get('title')}' target {t.get('refId')}", t["expr"]))
            walk(p.get("panels"))

    walk(dashboard.get("panels"))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q or "")
        if m:
            out.append((f"variable ${v.get('name')}", m.group(1)))
        elif q:
            out.append((f"variable ${v.get('name')}", re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", q)))
    return out


# What an operator must find on the dashboard: (description, regex over a panel query).
REQUIRED_PANELS = [
    ("events processed rate per projection", r"rate\(rillflow_events_processed_total\b"),
    ("lag in events", r"\brillflow_projection_lag_events\b"),
    ("lag in seconds", r"\brillflow_projection_lag_seconds\b"),
    ("batch duration p50", r"histogram_quantile\(\s*0?\.5\s*,.*rillflow_projection_batch_duration_seconds_bucket"),
    ("batch duration p99", r"histogram_quantile\(\s*0?\.99\s*,.*rillflow_projection_batch_duration_seconds_bucket"),
    ("DLQ depth", r"\brillflow_projection_dlq_depth\b"),
    ("retries rate", r"rate\(rillflow_projection_retries_total\b"),
    ("lease ownership", r"\brillflow_projection_lease_owned\b"),
    ("wakeups by cause", r"by \(cause\).*rillflow_wakeups_total|rillflow_wakeups_total.*by \(cause\)"),
    ("readiness", r"\brillflow_ready\b"),
]


def check_dashboard(c, root):
    path = os.path.join(root, "deploy", "grafana-dashboard.json")
    try:
        dashboard = json.loads(read_text(path))
    except (OSError, ValueError) as e:
        c.fail("deploy/grafana-dashboard.json parses as JSON", str(e))
        return []
    c.ok(dashboard.get("title") and dashboard.get("uid"), "dashboard: has a title and a uid")
    ids, all_panels = [], []

    def walk(panels):
        for p in panels or []:
            all_panels.append(p)
            walk(p.get("panels"))

    walk(dashboard.get("panels"))
    ids = [p.get("id") for p in all_panels]
    c.ok(len(ids) == len(set(ids)) and None not in ids, "dashboard: panel ids are unique", f"got {ids}")
    for p in all_panels:
        c.ok(isinstance(p.get("gridPos"), dict), f"dashboard: panel {p.get('id')} has a gridPos")
        if p.get("type") == "row":
            continue
        refs = [t.get("refId") for t in p.get("targets", [])]
        c.ok(refs and len(refs) == len(set(refs)), f"dashboard: panel {p.get('id')} has targets with unique refIds")
        for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
            c.ok(isinstance(ds, dict) and ds.get("uid") == "${datasource}",
                 f"dashboard: panel {p.get('id')} uses the $datasource variable (portable between Grafanas)",
                 f"got {ds!r}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    c.ok("datasource" in variables, "dashboard: has a $datasource variable")

    queries = dashboard_queries(dashboard)
    c.ok(queries, "dashboard: has PromQL queries")
    for where, expr in queries:
        names = promql_metric_names(expr)
        c.ok(names, f"dashboard: {where} selects a metric", expr)
        for name in names:
            c.ok(metric_known(name), f"dashboard: {where} uses only metrics rillflowd exports",
                 f"unknown metric '{name}' in: {expr}")
        for var in re.findall(r"\$\{?(\w+)", expr):
            c.ok(var.startswith("__") or var in variables, f"dashboard: {where} uses defined variables",
                 f"${var} is not defined")
    panel_exprs = [e for w, e in queries if w.startswith("panel")]
    for what, pattern in REQUIRED_PANELS:
        c.ok(any(re.search(pattern, e) for e in panel_exprs), f"dashboard: shows {what}", f"no query matches /{pattern}/")
    return queries


def promtool_check(c, queries):
    """Optional: real PromQL parsing by promtool, when it is installed."""
    promtool = shutil.which("promtool")
    if not promtool:
        print("check_manifests: note: promtool not on PATH, PromQL syntax not checked by Prometheus")
        return
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"rillflow_dashboard:q{i}",
         "expr": re.sub(r"\$\{[^}]*\}|\$\w+", lambda m: "5m" if "rate_interval" in m.group(0) or "interval" in m.group(0) else ".*", e)}
        for i, (_, e) in enumerate(queries)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f)
    try:
        r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True, timeout=60)
        c.ok(r.returncode == 0, "dashboard: every query parses (promtool check rules)", (r.stdout + r.stderr).strip())
    finally:
        os.unlink(f.name)


def kustomize_check(c, root):
    """Optional: a full `kubectl kustomize` build, when kubectl is installed."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("check_manifests: note: kubectl not on PATH, kustomize build not run")
        return
    try:
        r = subprocess.run([kubectl, "kustomize", os.path.join(root, "deploy")], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"check_manifests: note: kubectl kustomize could not run ({e}), skipped")
        return
    c.ok(r.returncode == 0, "deploy/: `kubectl kustomize deploy` builds", r.stderr.strip())


# ---- main ---------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")),
                        help="repository root (default: two levels above this script)")
    parser.add_argument("--no-external", action="store_true", help="skip the optional promtool/kubectl checks")
    parser.add_argument("--rillflowd", help="read the config keys from `RILLFLOWD --print-config-schema`")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    rows = table_rows_from_daemon(args.rillflowd) if args.rillflowd else table_rows_from_reference(root)
    if not rows:
        sys.stderr.write("check_manifests: no config key table (pass --rillflowd or keep config/README.md)\n")
        return 2
    CONFIG_SCHEMA.clear()
    CONFIG_SCHEMA.update(schema_from_rows(rows))
    if not os.path.isdir(os.path.join(root, "deploy")):
        sys.stderr.write(f"check_manifests: {root} has no deploy/ directory\n")
        return 2

    c = Checks()
    objects, objects_by_file, configs = [], {}, []
    for dirpath, _, files in sorted(os.walk(os.path.join(root, "deploy"))):
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(dirpath, name)
            key = rel(root, path)
            docs = load_yaml_docs(c, root, path)
            if docs is None:
                continue
            c.ok(docs, f"{key} has a document")
            objects_by_file[key] = docs
            if key == IMAGE_CONFIG_SOURCE:
                configs.append((key, read_text(path)))
                continue
            for d in docs:
                if c.ok(isinstance(d, dict) and d.get("apiVersion") and d.get("kind"),
                        f"{key}: every document is a Kubernetes object (apiVersion, kind)", f"got {type_name(d)}"):
                    c.ok(d.get("kind") == "Kustomization" or d.get("metadata", {}).get("name"),
                         f"{key}: {d.get('kind')} has metadata.name")
                    objects.append((key, d))
    c.ok(IMAGE_CONFIG_SOURCE in objects_by_file, f"{IMAGE_CONFIG_SOURCE} (the image's config) exists")

    # Every ConfigMap's rillflowd.yaml, and the image's copy.
    cm_configs = []
    for key, o in objects:
        if o.get("kind") == "ConfigMap":
            data = o.get("data", {})
            c.ok("rillflowd.yaml" in data, f"{key}: ConfigMap has a rillflowd.yaml key", f"keys {sorted(data)}")
            if "rillflowd.yaml" in data:
                cm_configs.append((f"{key} data.rillflowd.yaml", data["rillflowd.yaml"]))
    ref_keys = reference_keys(root)
    parsed = {}
    for where, text in cm_configs + configs:
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as e:
            c.fail(f"{where} parses as YAML", str(e).replace("\n", " "))
            continue
        parsed[where] = config
        validate_config(c, where, config)
        check_config_semantics(c, where, config)
        if ref_keys:
            unknown = sorted(k for k in used_key_paths(config) if k not in ref_keys)
            c.ok(not unknown, f"{where}: every key is in the daemon's reference (config/README.md)", f"not there: {unknown}")
    if len(parsed) >= 2:
        values = list(parsed.values())
        c.ok(all(v == values[0] for v in values), "the ConfigMap's rillflowd.yaml and the image's config are identical",
             " vs ".join(parsed))

    check_kustomization(c, root, objects_by_file)
    check_kubernetes(c, root, objects, cm_configs)
    queries = check_dashboard(c, root)
    check_systemd(c, root)
    check_dockerfile(c, root)
    if not args.no_external:
        if queries:
            promtool_check(c, queries)
        kustomize_check(c, root)

    for failure in c.failures:
        print(f"FAIL: {failure}")
    total = c.passed + len(c.failures)
    if c.failures:
        print(f"check_manifests: {len(c.failures)} of {total} checks failed")
        return 1
    print(f"check_manifests: all {total} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
