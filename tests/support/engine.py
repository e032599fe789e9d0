"""Small helpers shared by the engine tests."""

from __future__ import annotations

from crossbridge_otel.patching import status


def state_of(module: str, qualname: str) -> status.TargetStatus:
    """The status registry's row for one target."""
    rows = [s for s in status.snapshot() if (s.module, s.qualname) == (module, qualname)]
    assert len(rows) == 1, rows
    return rows[0]


import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from support.crossbridge_target import crossbridge_env  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]  # holds the synthetic target packages (victims, retry_victims)
REPO = TESTS.parent
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


def child_env(**extra: str) -> dict[str, str]:
    """A production-like environment for a child process: no inherited OTEL_*/CROSSBRIDGE_OTEL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_"))}
    env = crossbridge_env(env, extra_path=(TESTS,))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_instrumented(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` under opentelemetry-instrument from this virtual environment."""
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, "-c", code],
        env=child_env(**env), capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
    )
