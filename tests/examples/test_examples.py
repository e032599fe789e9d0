"""Each command in examples/ runs and its telemetry shows real CrossBridge work.

- ``examples/run-demo.sh``, the README's main job, with the test run's own .venv (the install step is skipped:
  the venv already holds everything, see ``demo_venv``), writing OTLP JSON lines to a file of the test's.
- ``examples/crossbridge-cli.sh``, one real CrossBridge CLI command, exporting over OTLP/HTTP to an
  :class:`otlp_sink.OtlpSink`, and with every exporter ``none`` plus ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT``.

The scripts run in production mode (``CROSSBRIDGE_OTEL_STRICT=false``), inside the test run's loopback-only
network namespace (run-demo.sh sees it and does not nest another one, so a sink here would be reachable).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.crossbridge_target import CROSSBRIDGE_SRC, REPO
from support.otlp_sink import OtlpSink, attributes

EXAMPLES = REPO / "examples"
REQUIREMENTS = EXAMPLES / "crossbridge-requirements.txt"
STAMP = REPO / ".venv" / ".run-demo-installed"


def script_env(**extra: str) -> dict[str, str]:
    """The environment a user would run the scripts with: CrossBridge named, nothing of the test run's leaking."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_"))}
    for name in ("PYTHONPATH", "TRACEPARENT", "TRACESTATE"):
        env.pop(name, None)
    env.update({"CROSSBRIDGE_SRC": str(CROSSBRIDGE_SRC), "CROSSBRIDGE_OTEL_STRICT": "false", **extra})
    return env


def run_script(name: str, *args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(EXAMPLES / name), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _requirement_names() -> list[str]:
    """crossbridge-otel, its [libraries] extra and CrossBridge's runtime dependencies: what run-demo.sh installs."""
    extra = [r for r in importlib.metadata.requires("crossbridge-otel") or [] if 'extra == "libraries"' in r]
    lines = [line.strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    names = ["crossbridge-otel", *extra, *(line for line in lines if line and not line.startswith("#"))]
    return [re.split(r"[<>=!~;\[ ]", name, maxsplit=1)[0] for name in names]


@pytest.fixture(scope="module")
def demo_venv() -> Path:
    """The repository's .venv with run-demo.sh's install stamp current, so the script skips pip (no network here).

    tests/run.sh installed ``.[libraries]`` and the ``test`` group, a superset of what run-demo.sh installs; when
    every one of those distributions is present, the stamp run-demo.sh would have written is written (the same
    hash: pyproject.toml then the requirements file). Anything missing fails the test with the name, rather than
    installing."""
    missing = []
    for name in _requirement_names():
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    assert not missing, f".venv lacks {missing}: run bash examples/run-demo.sh once (outside the namespace)"
    wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + REQUIREMENTS.read_bytes()).hexdigest()
    if not STAMP.is_file() or STAMP.read_text().strip() != wanted:
        STAMP.write_text(wanted + "\n")
    return STAMP


def jsonl_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in an OTLP JSON lines file, with its attributes as a plain dict under ``attrs``."""
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    plain = {a["key"]: next(iter(a["value"].values()), None) for a in span.get("attributes", [])}
                    spans.append({**span, "attrs": plain})
    return spans


# -------------------------------------------------------------------------------------------- run-demo.sh
@pytest.fixture(scope="module")
def demo(demo_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run of examples/run-demo.sh with no collector: (the finished process, its telemetry file)."""
    output = tmp_path_factory.mktemp("demo") / "telemetry.jsonl"
    done = run_script("run-demo.sh", env=script_env(CROSSBRIDGE_OTEL_LOCAL_OUTPUT=str(output)))
    return done, output


def test_run_demo_succeeds_on_the_real_crossbridge(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """run-demo.sh exits 0, says each step, skips pip with a current venv, and ran CrossBridge from CROSSBRIDGE_SRC."""
    done, output = demo
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"== CrossBridge: {CROSSBRIDGE_SRC}" in out
    assert "skipping pip install" in out and "== installing" not in out
    assert "== running examples/demo.py under opentelemetry-instrument" in out
    assert f"running the real CrossBridge from {CROSSBRIDGE_SRC}" in out
    assert f"== telemetry written to {output}" in out


def test_run_demo_telemetry_is_crossbridge_spans_in_one_trace(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """The file holds one trace of CrossBridge spans from every area the demo touches, with the contract
    attributes, and the swallowed failures as ERROR."""
    done, output = demo
    assert done.returncode == 0, done.stdout + done.stderr
    spans = jsonl_spans(output)
    names = {s["name"] for s in spans}
    assert {
        "coverage.parse", "coverage.collect", "coverage.command", "coverage.repository.save_test_coverage",
        "translation.translate", "execution.results.normalize", "execution.results.compare", "runtime.retry",
        "profiling.collector.start", "profiling.storage.write",
    } <= names, names
    assert len({s["traceId"] for s in spans}) == 1
    ours = [s for s in spans if "crossbridge.area" in s["attrs"]]
    assert all(s["attrs"]["code.function.name"] and s["attrs"]["crossbridge.category"] for s in ours)
    failed = {(s["name"], s["attrs"].get("error.type")) for s in spans if s.get("status", {}).get("code")}
    assert {("coverage.parse", "returned_none"), ("translation.translate", "translation_failed"),
            ("coverage.parse", "FileNotFoundError")} <= failed, failed


def test_run_demo_without_crossbridge_stops_and_says_how_to_point_at_it(tmp_path: Path) -> None:
    """With no CrossBridge at CROSSBRIDGE_SRC the script exits 2 before installing, naming the variable."""
    done = run_script("run-demo.sh", env=script_env(CROSSBRIDGE_SRC=str(tmp_path / "nowhere")), timeout=30)
    assert done.returncode == 2
    assert "CrossBridge not found" in done.stderr and "CROSSBRIDGE_SRC" in done.stderr
    assert "== installing" not in done.stdout and "== running" not in done.stdout


# ---------------------------------------------------------------------------------------- crossbridge-cli.sh
CLI_SPANS = {"cli.command", "coverage.collect", "coverage.command", "coverage.parse",
             "coverage.repository.save_test_coverage"}


def test_cli_script_exports_crossbridge_cli_spans_over_otlp() -> None:
    """crossbridge-cli.sh runs CrossBridge's `coverage collect-isolated` and its spans reach an OTLP endpoint."""
    with OtlpSink() as sink:
        env = script_env(OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint, OTEL_SERVICE_NAME="examples-cli")
        done = run_script("crossbridge-cli.sh", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Coverage collected successfully" in done.stdout
        assert f"→ OTLP {sink.endpoint}" in done.stderr
        assert sink.wait_for(lambda s: CLI_SPANS <= {span.name for _, span in s.spans()}, timeout=10)
        spans = sink.spans()
    assert {resource["service.name"] for resource, _ in spans} == {"examples-cli"}
    assert len({span.trace_id for _, span in spans}) == 1
    collect = next(span for _, span in spans if span.name == "coverage.collect")
    assert attributes(collect.attributes)["code.function.name"] == (
        "core.coverage.engine.CoverageMappingEngine.collect_coverage_isolated"
    )


def test_cli_script_with_local_output_names_the_file_not_an_endpoint(tmp_path: Path) -> None:
    """With every exporter `none` and CROSSBRIDGE_OTEL_LOCAL_OUTPUT, the script names that file (no :4318 claim)
    and the file receives the CrossBridge spans."""
    output = tmp_path / "cli.jsonl"
    none = {f"OTEL_{signal}_EXPORTER": "none" for signal in ("TRACES", "LOGS", "METRICS")}
    done = run_script("crossbridge-cli.sh", env=script_env(CROSSBRIDGE_OTEL_LOCAL_OUTPUT=str(output), **none))
    assert done.returncode == 0, done.stdout + done.stderr
    announced = next(line for line in done.stderr.splitlines() if line.startswith("crossbridge coverage"))
    assert str(output) in announced and "4318" not in announced
    assert CLI_SPANS <= {s["name"] for s in jsonl_spans(output)}
