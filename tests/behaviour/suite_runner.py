"""Run CrossBridge's own test subset once, plainly or under ``opentelemetry-instrument``, and read per-test outcomes.

    run = run_suite("plain")                                   # or run_suite("instrumented", endpoint=sink.endpoint)
    run.outcomes["tests/unit/runtime/test_retry.py::test_x"]   # "passed", "failed", "error", "skipped", ...
    run.wall_seconds

Each run gets a fresh copy of the CrossBridge tree (some of its tests write into it), runs pytest there with the
same interpreter as this process (the .venv), ``-p no:cacheprovider``, and an environment built by
``crossbridge_env()`` with ``PYTHONPATH`` pointing at the copy and every inherited ``OTEL_*`` /
``CROSSBRIDGE_OTEL_*`` variable removed, so both modes differ only in what ``instrumented`` adds. Outcomes come
from ``outcome_plugin`` (exact node ids). Used by tests/behaviour/test_crossbridge_suite.py and by
tests/benchmarks/bench_suite.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from support.crossbridge_target import CROSSBRIDGE_SRC, crossbridge_env

__all__ = ["INSTRUMENT", "SUBSET", "SuiteRun", "differences", "run_suite"]

# The subset SNAPSHOT.md lists: 572 tests, about 55 s plainly on 2 cores, 11 failures and 2 errors of CrossBridge's own.
SUBSET = (
    "tests/unit/runtime",
    "tests/unit/coverage",
    "tests/unit/translation",
    "tests/core/coverage",
    "tests/unit/core/execution/test_results.py",
    "tests/unit/core/orchestration/test_batch.py",
    "tests/test_performance_profiling.py",
    "tests/test_unified_profiling.py",
    "tests/unit/core/test_logging.py",
)
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
_PLUGIN = Path(__file__).with_name("outcome_plugin.py")
# Variables of the harness that must not reach the child: ours, the SDK's, and pytest's own.
_DROP_PREFIXES = ("OTEL_", "CROSSBRIDGE_OTEL_")
_DROP = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER")


@dataclass(frozen=True)
class SuiteRun:
    """One run of the subset: per-test outcomes by node id, wall time of the pytest process, and its exit."""

    mode: str
    outcomes: dict[str, str]
    wall_seconds: float
    returncode: int
    output_tail: str


def _environment(copy: Path, plugin_dir: Path, endpoint: str | None) -> dict[str, str]:
    env = crossbridge_env()
    for name in list(env):
        if name.startswith(_DROP_PREFIXES) or name in _DROP:
            del env[name]
    env["PYTHONPATH"] = os.pathsep.join([str(copy), str(plugin_dir)])
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
        env["OTEL_METRIC_EXPORT_INTERVAL"] = "5000"
    return env


def _command(mode: str, outcomes_json: Path) -> list[str]:
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "outcome_plugin",
                   f"--outcomes-json={outcomes_json}", *SUBSET]
    if mode == "plain":
        return pytest_args
    if mode == "instrumented":
        return [str(INSTRUMENT), *pytest_args]
    raise ValueError(f"mode must be 'plain' or 'instrumented', not {mode!r}")


def _run_bounded(command: list[str], *, cwd: Path, env: dict[str, str], log: Path, timeout: float) -> int:
    """Run ``command`` in its own process group; past ``timeout`` the whole group is killed and TimeoutError raised."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TimeoutError(f"CrossBridge's suite did not finish in {timeout:.0f} s: {' '.join(command)}") from None


def _forget_bytecode(copy: Path) -> None:
    """Drop the bytecode the run wrote for the copy under PYTHONPYCACHEPREFIX (the copy's path is never reused)."""
    prefix = os.environ.get("PYTHONPYCACHEPREFIX")
    if prefix:
        shutil.rmtree(Path(prefix) / copy.relative_to(copy.anchor), ignore_errors=True)


def run_suite(mode: str, *, endpoint: str | None = None, timeout: float = 300.0) -> SuiteRun:
    """Run the subset once in ``mode`` ("plain" or "instrumented", which needs ``endpoint``) from a fresh copy."""
    if CROSSBRIDGE_SRC is None:
        raise RuntimeError("CrossBridge not found (crossbridge_target.CROSSBRIDGE_SRC is None)")
    if (mode == "instrumented") != (endpoint is not None):
        raise ValueError("an OTLP endpoint is given for the instrumented mode, and only for it")
    with tempfile.TemporaryDirectory(prefix=f"crossbridge-suite-{mode}-") as tmp:
        work = Path(tmp)
        copy = work / "src"
        shutil.copytree(CROSSBRIDGE_SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
        plugin_dir = work / "plugin"
        plugin_dir.mkdir()
        shutil.copy(_PLUGIN, plugin_dir / _PLUGIN.name)
        outcomes_json, log = work / "outcomes.json", work / "pytest.log"
        env = _environment(copy, plugin_dir, endpoint)
        started = time.monotonic()
        try:
            returncode = _run_bounded(_command(mode, outcomes_json), cwd=copy, env=env, log=log, timeout=timeout)
        finally:
            _forget_bytecode(copy)
        wall = time.monotonic() - started
        tail = log.read_text(errors="replace")[-4000:]
        if not outcomes_json.exists():
            raise RuntimeError(f"{mode} run wrote no outcomes (exit {returncode}); output ends:\n{tail}")
        outcomes = json.loads(outcomes_json.read_text())["outcomes"]
    return SuiteRun(mode, outcomes, wall, returncode, tail)


def differences(first: SuiteRun, second: SuiteRun) -> list[tuple[str, str, str]]:
    """(node id, outcome in ``first``, outcome in ``second``) for every test whose outcome differs or is missing."""
    ids = sorted(first.outcomes.keys() | second.outcomes.keys())
    missing = "(not run)"
    return [(i, first.outcomes.get(i, missing), second.outcomes.get(i, missing)) for i in ids
            if first.outcomes.get(i, missing) != second.outcomes.get(i, missing)]
