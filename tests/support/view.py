"""Helpers and inputs for the view tests (conftest.py exposes the fixtures): a real run's file, a large one.

- ``demo_file``: ``examples/demo.py`` (real CrossBridge work: coverage parses, translations, JUnit results, a
  retried call, CrossBridge's own log records) run under ``opentelemetry-instrument`` with every exporter ``none``
  and ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` set, as a user without a backend would, in production mode.
- ``large_file``: 1,000 traces of 3 spans plus one lone span (3,001 spans) written by the real SDK through the
  distribution's own local file exporter, with chosen durations (item ``i`` takes ``i % 100 + 1`` ms) and every
  tenth item failed, so the aggregate's numbers are known exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.crossbridge_target import REPO, crossbridge_env

BIN = Path(sys.executable).parent
CLI = [sys.executable, "-m", "crossbridge_otel.cli"]


def instrumented_env(output: Path, **extra: str) -> dict[str, str]:
    """A user's environment: CrossBridge importable, no backend, local output to ``output``, production mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_"))}
    env = crossbridge_env(env)
    env.update({
        "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
        "CROSSBRIDGE_OTEL_LOCAL_OUTPUT": str(output), "CROSSBRIDGE_OTEL_STRICT": "false",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


def run_instrumented(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "opentelemetry-instrument"), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO)


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local output file of one real instrumented run of examples/demo.py."""
    output = tmp_path_factory.mktemp("demo") / "telemetry.jsonl"
    done = run_instrumented([sys.executable, str(REPO / "examples" / "demo.py")], instrumented_env(output))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert output.is_file() and output.stat().st_size > 0, done.stderr[-4000:]
    return output


LARGE_TRACES = 1000


@pytest.fixture(scope="session")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,001 spans in 1,001 traces with known durations and failures, written by the real local file exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode, set_span_in_context

    from crossbridge_otel.export.localfile import JsonLinesExporter

    output = tmp_path_factory.mktemp("large") / "large.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(str(output), "traces")))  # type: ignore[arg-type]
    tracer = provider.get_tracer("crossbridge_otel.tests")
    ms = 1_000_000
    t = 1_700_000_000_000_000_000
    for i in range(LARGE_TRACES):
        root = tracer.start_span("batch.run", start_time=t, attributes={"crossbridge.area": "orchestration"})
        ctx = set_span_in_context(root)
        for j in range(2):
            item = i * 2 + j
            span = tracer.start_span("batch.item", context=ctx, start_time=t + ms,
                                     attributes={"crossbridge.area": "execution"})
            if item % 10 == 0:
                span.set_attribute("error.type", "task_failed")
                span.set_status(Status(StatusCode.ERROR, f"item {item} failed"))
            span.end(end_time=t + ms + (item % 100 + 1) * ms)
        root.end(end_time=t + 200 * ms)
        t += 300 * ms
    lone = tracer.start_span("cli.command", start_time=t)
    lone.end(end_time=t + 5 * ms)
    provider.shutdown()
    return output
