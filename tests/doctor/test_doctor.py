"""`crossbridge-otel doctor` against the real CrossBridge, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from conftest_pg import postgres_server  # noqa: E402,F401
from crossbridge_target import crossbridge_env  # noqa: E402

DOCTOR = [sys.executable, "-m", "crossbridge_otel.cli", "doctor"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CROSSBRIDGE_OTEL_", "OTEL_"))}
    env = crossbridge_env(env)
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # discard port: nothing listens
    env.update(extra)
    return env


def _doctor_json(**extra: str) -> dict:
    done = subprocess.run([*DOCTOR, "--json"], env=_env(**extra), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # only JSON on stdout, whatever CrossBridge prints while it is imported


@pytest.fixture(scope="module")
def report() -> dict:
    return _doctor_json()


def test_every_target_is_patched_on_the_snapshot_except_cypress_hook(report):
    """Every target of every area exists and is patched on the real CrossBridge; only its broken cypress_hook fails."""
    by_state: dict[str, list[str]] = {}
    for row in report["targets"]:
        by_state.setdefault(row["state"], []).append(f"{row['module']}.{row['qualname']}")
    assert set(by_state) == {"patched", "failed"}, by_state.keys()
    assert len(by_state["patched"]) > 100
    assert all("cypress_hook" in name for name in by_state["failed"]), by_state["failed"]


def test_cypress_hook_failure_gives_its_reason(report):
    """The broken cypress_hook module is reported failed with the SyntaxError and its line."""
    rows = [r for r in report["targets"] if r["module"].endswith("cypress_hook")]
    assert rows and all(r["state"] == "failed" for r in rows)
    assert "SyntaxError" in rows[0]["detail"] and "line 35" in rows[0]["detail"]


def test_every_area_instrumentor_loads(report):
    """Each crossbridge_* entry point loads, so one area per CrossBridge package is active."""
    areas = {"profiling", "coverage", "execution", "translation", "orchestration", "repo", "services", "runtime"}
    assert {f"crossbridge_{a}" for a in areas} <= set(report["instrumentors"])
    assert all(state == "loaded" for state in report["instrumentors"].values()), report["instrumentors"]


def test_disabled_area_is_reported_disabled():
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS turns one area off and doctor says so per target."""
    report = _doctor_json(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="crossbridge_coverage")
    coverage = [r for r in report["targets"] if r["area"] == "coverage"]
    assert coverage and all(r["state"] == "disabled by configuration" for r in coverage)
    assert any(r["state"] == "patched" for r in report["targets"] if r["area"] == "profiling")


def test_dead_endpoint_is_reported(report):
    """A collector that is not there is reported as not answering, with the reason."""
    assert report["endpoint"]["answers"] is False
    assert "127.0.0.1:9" in report["endpoint"]["url"]


def test_live_endpoint_answers():
    """An OTLP/HTTP endpoint that answers 200 is reported as answering."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = _doctor_json(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert report["endpoint"]["answers"] is True


def test_settings_warnings_and_hooks_warning_are_shown():
    """A bad setting value and a misspelt setting name are warnings; so is CROSSBRIDGE_HOOKS_ENABLED unset."""
    env = _env(CROSSBRIDGE_OTEL_EXPORT_TIMEOUT="soon", CROSSBRIDGE_OTEL_SUMARY="true")
    del env["CROSSBRIDGE_HOOKS_ENABLED"]
    done = subprocess.run(DOCTOR, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "CROSSBRIDGE_OTEL_EXPORT_TIMEOUT='soon' is not valid" in done.stdout
    assert "did you mean CROSSBRIDGE_OTEL_SUMMARY" in done.stdout
    assert "CROSSBRIDGE_HOOKS_ENABLED is not set to false" in done.stdout


def test_human_report_lists_targets_and_audit():
    """The text report has the target table with states and the audit table."""
    done = subprocess.run(DOCTOR, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "core.coverage.jacoco_parser.JaCoCoXMLParser.parse" in out and "coverage.parse" in out
    assert "failed  (the module failed to import: SyntaxError" in out
    assert "Audit" in out and "Health checks" in out


def test_health_checks_run_against_real_postgres(postgres_server):
    """A configured PostgreSQL health check is healthy against a live server and unhealthy on a closed port."""
    live = _doctor_json(CROSSBRIDGE_OTEL_HEALTH_POSTGRES=postgres_server.url)
    dead = _doctor_json(CROSSBRIDGE_OTEL_HEALTH_POSTGRES="postgresql://postgres:secret@127.0.0.1:9/postgres")
    assert [c["healthy"] for c in live["health"] if c["name"] == "postgres"] == [True]
    [down] = [c for c in dead["health"] if c["name"] == "postgres"]
    assert down["healthy"] is False and "secret" not in down["detail"]
