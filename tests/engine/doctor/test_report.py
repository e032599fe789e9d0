"""`crossbridge-otel doctor` against the real CrossBridge, run as users run it (a subprocess).

Exit codes: 0 healthy, 1 degraded, 2 broken or disabled. A healthy report needs an endpoint that answers: the
``collector`` fixture is a small OTLP/HTTP server on 127.0.0.1 answering 200.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from support.crossbridge_target import crossbridge_env  # noqa: E402

DOCTOR = [sys.executable, "-m", "crossbridge_otel.cli", "doctor"]
DEAD = "http://127.0.0.1:9"  # discard port: nothing listens
HEALTHY, DEGRADED, BROKEN = 0, 1, 2


class _Answers200(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def collector() -> Iterator[str]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that answers 200 to every export."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers200)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _env(endpoint: str = DEAD, crossbridge: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CROSSBRIDGE_OTEL_", "OTEL_"))}
    env = crossbridge_env(env) if crossbridge else {**env, "PYTHONPATH": "", "CROSSBRIDGE_HOOKS_ENABLED": "false"}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def _doctor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DOCTOR, *args], env=env, capture_output=True, text=True, timeout=180)


def _doctor_json(*args: str, code: int, **env_extra: str) -> dict:
    done = _doctor("--json", *args, env=_env(**env_extra))
    assert done.returncode == code, done.stdout[:3000] + done.stderr[-3000:]
    report = json.loads(done.stdout)  # only JSON on stdout, whatever CrossBridge prints while it is imported
    assert report["verdict"]["exit_code"] == code
    return report


@pytest.fixture(scope="module")
def report(collector) -> dict:
    return _doctor_json(code=HEALTHY, endpoint=collector)


@pytest.fixture(scope="module")
def text_report(collector) -> str:
    """The text report on the real CrossBridge, 250 columns wide."""
    done = _doctor("--width", "250", env=_env(collector))
    assert done.returncode == HEALTHY, done.stdout
    return done.stdout


# -- the verdict ---------------------------------------------------------------------------------------------


def test_first_line_is_the_verdict_on_the_real_snapshot(collector, report, text_report):
    """On the real CrossBridge with a collector that answers: 'OK: N of M targets patched; 1 failed in
    CrossBridge itself; exporting to <endpoint> (OTLP http/protobuf): reachable', exit 0."""
    patched = sum(1 for t in report["targets"] if t["state"] == "patched")
    first = text_report.splitlines()[0]
    assert first == (f"OK: {patched} of {len(report['targets'])} targets patched; 1 failed in CrossBridge itself; "
                     f"exporting to {collector} (OTLP http/protobuf): reachable")
    assert first == report["verdict"]["line"]


def test_dead_endpoint_is_broken_with_the_reason():
    """The only destination not answering: BROKEN, exit 2, and a reason line naming the endpoint."""
    report = _doctor_json("--no-import", code=BROKEN)
    assert report["verdict"]["line"].startswith("BROKEN: ")
    assert any(r.startswith(f"{DEAD} is not reachable") for r in report["verdict"]["reasons"])
    assert report["endpoint"]["answers"] is False and "127.0.0.1:9" in report["endpoint"]["url"]


def test_without_crossbridge_one_line_says_so_instead_of_one_per_target(collector):
    """CrossBridge not importable: one line says so and how to fix it; no per-target 'module missing' lines."""
    done = _doctor("--width", "120", env=_env(collector, crossbridge=False))
    assert done.returncode == BROKEN, done.stdout
    out = done.stdout
    assert out.splitlines()[1].startswith("  ! CrossBridge is not importable here")  # the verdict's first reason
    assert "PYTHONPATH" in out.splitlines()[1] + out.splitlines()[2]
    assert len(re.findall(r"module missing \(CrossBridge is not importable here\): \d+ target\(s\)", out)) == 1
    assert len(out.splitlines()) < 70
    assert sum(1 for line in out.splitlines() if "module missing" in line) <= 12  # one per area at most, grouped


def test_every_line_fits_the_terminal_width(collector):
    """With COLUMNS=80 (what a narrow terminal reports) no line of the report is wider than 80."""
    done = _doctor(env=_env(collector, COLUMNS="80"))
    assert done.returncode == HEALTHY, done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_exporters_none_and_a_local_file_are_described_as_such(tmp_path):
    """Every exporter none plus a local file: the file is the destination, nothing claims an endpoint is down."""
    path = tmp_path / "out" / "telemetry.jsonl"
    none = {f"OTEL_{s}_EXPORTER": "none" for s in ("TRACES", "LOGS", "METRICS")}
    done = _doctor("--no-import", "--width", "300", env=_env(CROSSBRIDGE_OTEL_LOCAL_OUTPUT=str(path), **none))
    assert done.returncode == HEALTHY, done.stdout
    assert done.stdout.splitlines()[0].endswith(f"exporting to file {path}: will be created")
    assert "none (OTEL_TRACES_EXPORTER)" in done.stdout
    assert "NOT reachable" not in done.stdout and "DOES NOT ANSWER" not in done.stdout


def test_every_exporter_none_and_no_file_is_broken():
    """Nothing to export to is BROKEN, with the reason."""
    none = {f"OTEL_{s}_EXPORTER": "none" for s in ("TRACES", "LOGS", "METRICS")}
    report = _doctor_json("--no-import", code=BROKEN, **none)
    assert any("nothing is exported" in r for r in report["verdict"]["reasons"])


def test_unwritable_local_output_is_flagged(collector, tmp_path):
    """A local output path under a regular file is flagged as not writable: DEGRADED beside a live endpoint."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    report = _doctor_json("--no-import", code=DEGRADED, endpoint=collector,
                          CROSSBRIDGE_OTEL_LOCAL_OUTPUT=str(blocker / "t.jsonl"))
    assert any("cannot be written" in r and "is not a directory" in r for r in report["verdict"]["reasons"])


def test_disabled_distribution_says_so():
    """CROSSBRIDGE_OTEL_ENABLED=false: the verdict says DISABLED (exit 2) and no instrumentor is 'loaded'."""
    done = _doctor(env=_env(CROSSBRIDGE_OTEL_ENABLED="false"))
    assert done.returncode == BROKEN
    assert done.stdout.startswith("DISABLED: CROSSBRIDGE_OTEL_ENABLED=false")
    assert "Instrumentors: 0 of " in done.stdout
    assert all("not loaded: CROSSBRIDGE_OTEL_ENABLED=false" in line
               for line in done.stdout.splitlines() if line.startswith("  crossbridge_"))


def test_standard_setting_typos_are_warnings_with_suggestions(collector):
    """A misspelt exporter and disabled-instrumentation name: DEGRADED, each a warning with 'did you mean'."""
    report = _doctor_json("--no-import", code=DEGRADED, endpoint=collector, OTEL_TRACES_EXPORTER="consol",
                          OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="crossbridge_coverge")
    warnings = "\n".join(report["warnings"])
    assert "did you mean 'console'?" in warnings and "did you mean 'crossbridge_coverage'?" in warnings


# -- the same facts everywhere -------------------------------------------------------------------------------


def test_failure_reason_is_the_same_in_targets_and_audit(report):
    """cypress_hook's failure reads the same in the targets list and in the audit table."""
    [target] = [t for t in report["targets"] if t["module"].endswith("cypress_hook")]
    [audit] = [a for a in report["audit"] if a["module"].endswith("cypress_hook")]
    assert "SyntaxError" in target["detail"] and "line 35" in target["detail"]
    assert target["detail"] in audit["traced"]


def test_every_target_is_patched_on_the_snapshot_except_cypress_hook(report):
    """Every target of every area exists and is patched on the real CrossBridge; only its broken cypress_hook fails."""
    by_state: dict[str, list[str]] = {}
    for row in report["targets"]:
        by_state.setdefault(row["state"], []).append(f"{row['module']}.{row['qualname']}")
    assert set(by_state) == {"patched", "failed"}, by_state.keys()
    assert len(by_state["patched"]) > 100
    assert all("cypress_hook" in name for name in by_state["failed"]), by_state["failed"]


def test_every_area_instrumentor_loads(report):
    """Each crossbridge_* entry point loads, so one area per CrossBridge package is active."""
    areas = {"profiling", "coverage", "execution", "translation", "orchestration", "repo", "services", "runtime"}
    assert {f"crossbridge_{a}" for a in areas} <= set(report["instrumentors"])
    assert all(state == "loaded" for state in report["instrumentors"].values()), report["instrumentors"]


def test_disabled_area_is_reported_disabled(collector):
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS turns one area off: doctor says so per target, and it is no fault."""
    report = _doctor_json(code=HEALTHY, endpoint=collector,
                          OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="crossbridge_coverage")
    coverage = [r for r in report["targets"] if r["area"] == "coverage"]
    assert coverage and all(r["state"] == "disabled by configuration" for r in coverage)
    assert any(r["state"] == "patched" for r in report["targets"] if r["area"] == "profiling")
    assert f"{len(coverage)} disabled by configuration" in report["verdict"]["line"]


def test_settings_warnings_and_hooks_note_are_shown(collector):
    """A bad value and a misspelt name are warnings (DEGRADED); CROSSBRIDGE_HOOKS_ENABLED unset is a note."""
    env = _env(collector, CROSSBRIDGE_OTEL_EXPORT_TIMEOUT="soon", CROSSBRIDGE_OTEL_SUMARY="true")
    del env["CROSSBRIDGE_HOOKS_ENABLED"]
    done = _doctor("--no-import", "--width", "200", env=env)
    assert done.returncode == DEGRADED, done.stdout
    assert "CROSSBRIDGE_OTEL_EXPORT_TIMEOUT='soon' is not valid" in done.stdout
    assert "did you mean CROSSBRIDGE_OTEL_SUMMARY" in done.stdout
    assert re.search(r"Notes\n  - CROSSBRIDGE_HOOKS_ENABLED is not set to false", done.stdout)


def test_verbose_report_lists_every_target_and_the_audit_table(collector):
    """-v lists each target with its span and state, and the whole audit table."""
    done = _doctor("-v", "--width", "250", env=_env(collector))
    assert done.returncode == HEALTHY, done.stdout
    out = done.stdout
    assert re.search(r"core\.coverage\.jacoco_parser\.JaCoCoXMLParser\.parse\s+coverage\.parse\s+patched", out)
    assert "failed: the module failed to import: SyntaxError" in out
    assert re.search(r"area\s+module\s+traced\s+logs\s+retry\s+health", out)


def test_default_report_groups_patched_targets_per_area(text_report):
    """Without -v, patched targets are counted per area (one line each), not listed."""
    assert re.search(r"\n  coverage\s+\d+ patched\n", text_report)
    assert "JaCoCoXMLParser.parse" not in text_report


def test_health_checks_run_against_real_postgres(collector, postgres_server):
    """A configured PostgreSQL health check is healthy against a live server; unhealthy on a closed port (DEGRADED)."""
    live = _doctor_json("--no-import", code=HEALTHY, endpoint=collector,
                        CROSSBRIDGE_OTEL_HEALTH_POSTGRES=postgres_server.url)
    dead = _doctor_json("--no-import", code=DEGRADED, endpoint=collector,
                        CROSSBRIDGE_OTEL_HEALTH_POSTGRES="postgresql://postgres:secret@127.0.0.1:9/postgres")
    assert [c["healthy"] for c in live["health"] if c["name"] == "postgres"] == [True]
    [down] = [c for c in dead["health"] if c["name"] == "postgres"]
    assert down["healthy"] is False and "secret" not in down["detail"]
    assert "secret" not in json.dumps(dead["verdict"])
