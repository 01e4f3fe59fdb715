#!/usr/bin/python3
"""Self-test of check_manifests.py: the real files pass, and each kind of mistake it exists to
catch makes it fail with a message that names the mistake. Each case copies the deployment files
into a scratch directory, breaks one thing and runs the checker there.

    /usr/bin/python3 tests/deploy/test_check_manifests.py [-v]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CHECKER = os.path.join(HERE, "check_manifests.py")
sys.path.insert(0, HERE)
import check_manifests  # noqa: E402  (the module under test)

# What the checker reads.
COPIED = ["deploy", "systemd", "Dockerfile", ".dockerignore", "config/README.md"]


class Scratch:
    """A copy of the deployment files that one test may break."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rillflow-deploy-")
        for item in COPIED:
            src, dst = os.path.join(ROOT, item), os.path.join(self.dir, item)
            if os.path.isdir(src):
                shutil.copytree(src, dst)
            elif os.path.exists(src):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)

    def edit(self, path, old, new, count=1):
        full = os.path.join(self.dir, path)
        with open(full, encoding="utf-8") as f:
            text = f.read()
        if old not in text:
            raise AssertionError(f"test setup: {old!r} not in {path}")
        with open(full, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, count))

    def write(self, path, text):
        with open(os.path.join(self.dir, path), "w", encoding="utf-8") as f:
            f.write(text)

    def run(self):
        r = subprocess.run([sys.executable, CHECKER, "--root", self.dir, "--no-external"],
                           capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout + r.stderr

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class CheckManifestsTest(unittest.TestCase):
    def setUp(self):
        self.s = Scratch()

    def tearDown(self):
        self.s.cleanup()

    def assertFailsWith(self, pattern):
        code, out = self.s.run()
        self.assertEqual(code, 1, f"expected a failure matching /{pattern}/, got exit {code}:\n{out}")
        self.assertRegex(out, pattern)

    def test_the_real_files_pass(self):
        code, out = self.s.run()
        self.assertEqual(code, 0, out)
        self.assertIn("checks passed", out)

    # -- dashboard --
    def test_dashboard_metric_that_rillflowd_does_not_export_fails(self):
        self.s.edit("deploy/grafana-dashboard.json", "rillflow_projection_retries_total", "rillflow_projection_retry_total")
        self.assertFailsWith(r"unknown metric 'rillflow_projection_retry_total'")

    def test_dashboard_metric_without_the_prefix_fails(self):
        self.s.edit("deploy/grafana-dashboard.json", "sum(rillflow_ready{", "sum(up{")
        self.assertFailsWith(r"unknown metric 'up'")

    def test_dashboard_missing_the_p99_panel_fails(self):
        self.s.edit("deploy/grafana-dashboard.json", "histogram_quantile(0.99,", "histogram_quantile(0.95,")
        self.assertFailsWith(r"dashboard: shows batch duration p99")

    def test_dashboard_that_is_not_json_fails(self):
        self.s.write("deploy/grafana-dashboard.json", "{ not json")
        self.assertFailsWith(r"grafana-dashboard.json parses as JSON")

    # -- config --
    def test_unknown_config_key_fails_with_its_path(self):
        self.s.edit("deploy/configmap.yaml", "drain_deadline_ms: 30000", "drain_deadline: 30000")
        self.assertFailsWith(r"unknown key 'daemon.drain_deadline'")

    def test_unknown_projection_key_fails_with_its_path(self):
        self.s.edit("deploy/configmap.yaml", "batch_size: 500", "batchsize: 500")
        self.assertFailsWith(r"unknown key 'projections\[0\].batchsize'")

    def test_config_value_of_the_wrong_type_fails(self):
        self.s.edit("deploy/configmap.yaml", "notify: true", "notify: sometimes")
        self.assertFailsWith(r"daemon.notify is true or false")

    def test_configmap_and_image_config_drifting_apart_fails(self):
        self.s.edit("deploy/docker/rillflowd.yaml", "batch_size: 500", "batch_size: 100")
        self.assertFailsWith(r"are identical")

    def test_invalid_yaml_fails(self):
        self.s.write("deploy/broken.yaml", "kind: [unclosed\n")
        self.assertFailsWith(r"deploy/broken.yaml parses as YAML")

    # -- Kubernetes --
    def test_readiness_probe_on_the_wrong_path_fails(self):
        self.s.edit("deploy/deployment.yaml", "path: /health/ready", "path: /healthz")
        self.assertFailsWith(r"readinessProbe is GET /health/ready")

    def test_probe_on_another_port_fails(self):
        self.s.edit("deploy/deployment.yaml", "path: /health/live\n              port: http",
                    "path: /health/live\n              port: 9090")
        self.assertFailsWith(r"uses port 8080")

    def test_grace_period_shorter_than_the_drain_deadline_fails(self):
        self.s.edit("deploy/deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20")
        self.assertFailsWith(r"terminationGracePeriodSeconds >= 30")

    def test_running_as_root_fails(self):
        self.s.edit("deploy/deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", count=2)
        self.assertFailsWith(r"runAsNonRoot: true")

    def test_database_url_from_another_secret_fails(self):
        self.s.edit("deploy/deployment.yaml", "name: rillflow-db", "name: postgres-credentials")
        self.assertFailsWith(r"env DATABASE_URL comes from Secret rillflow-db key url")

    def test_servicemonitor_scraping_the_wrong_path_or_port_fails(self):
        self.s.edit("deploy/servicemonitor.yaml", "path: /metrics", "path: /prometheus")
        self.s.edit("deploy/servicemonitor.yaml", "port: http", "port: web")
        self.assertFailsWith(r"ServiceMonitor: path /metrics")
        self.assertFailsWith(r"ServiceMonitor: scrapes the Service port named http")

    def test_podmonitor_scraping_an_unnamed_port_fails(self):
        self.s.edit("deploy/podmonitor.yaml", "port: http", "port: metrics")
        self.assertFailsWith(r"PodMonitor: scrapes the container port named http")

    def test_applying_the_example_secret_fails(self):
        self.s.edit("deploy/kustomization.yaml", "  - configmap.yaml\n", "  - configmap.yaml\n  - secret.example.yaml\n")
        self.assertFailsWith(r"does not apply secret.example.yaml")

    # -- systemd --
    def test_stop_timeout_below_the_drain_deadline_fails(self):
        self.s.edit("systemd/rillflowd.service", "TimeoutStopSec=45", "TimeoutStopSec=20s")
        self.assertFailsWith(r"rillflowd.service: TimeoutStopSec >= 30")

    def test_template_unit_drifting_from_the_plain_unit_fails(self):
        self.s.edit("systemd/rillflowd@.service", "RestartSec=5s", "RestartSec=1s")
        self.assertFailsWith(r"rillflowd@.service matches rillflowd.service")

    def test_unit_that_is_not_type_notify_fails(self):
        self.s.edit("systemd/rillflowd.service", "Type=notify", "Type=simple")
        self.assertFailsWith(r"rillflowd.service: Type=notify")

    # -- Dockerfile --
    def test_dockerfile_that_does_not_run_scripts_setup_fails(self):
        self.s.edit("Dockerfile", "RUN apt-get update && bash /tmp/rillflow-setup && rm -rf /var/lib/apt/lists/*",
                    "RUN apt-get update && apt-get install -y cmake g++")
        self.assertFailsWith(r"the build stage runs scripts/setup")

    def test_dockerfile_running_as_root_fails(self):
        self.s.edit("Dockerfile", "USER 10001:10001", "USER root")
        self.assertFailsWith(r"runtime USER is the numeric UID 10001")

    def test_dockerfile_installing_dev_packages_at_runtime_fails(self):
        self.s.edit("Dockerfile", "libpqxx-6.4 \\", "libpqxx-dev \\")
        self.assertFailsWith(r"runtime packages only")


class PromqlNamesTest(unittest.TestCase):
    def test_names_are_found_and_functions_labels_and_variables_are_not(self):
        names = check_manifests.promql_metric_names
        self.assertEqual(names('histogram_quantile(0.99, sum by (projection, le) (rate('
                               'rillflow_projection_batch_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))'),
                         ["rillflow_projection_batch_duration_seconds_bucket"])
        self.assertEqual(names('time() - rillflow_process_start_time_seconds{instance=~"${instance}"}'),
                         ["rillflow_process_start_time_seconds"])
        self.assertEqual(names('sum(a_total) / ignoring(cause) group_left sum(b_total) offset 5m > 1e3'),
                         ["a_total", "b_total"])
        self.assertEqual(names('rillflow_db_pool_connections{state="open"} and on(instance) rillflow_ready == 1'),
                         ["rillflow_db_pool_connections", "rillflow_ready"])

    def test_histogram_series_map_to_their_histogram(self):
        self.assertTrue(check_manifests.metric_known("rillflow_projection_batch_duration_seconds_count"))
        self.assertFalse(check_manifests.metric_known("rillflow_ready_bucket"))
        self.assertFalse(check_manifests.metric_known("rillflow_events_processed"))

    def test_systemd_time_spans(self):
        ts = check_manifests.timespan_seconds
        self.assertEqual(ts("45"), 45)
        self.assertEqual(ts("1min 30s"), 90)
        self.assertEqual(ts("500ms"), 0.5)
        self.assertIsNone(ts("forever"))


if __name__ == "__main__":
    unittest.main()
