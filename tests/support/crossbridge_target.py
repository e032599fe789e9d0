"""Where the tests find the real CrossBridge, and the environment every process that imports it runs with.

CrossBridge is the test target, never project code: a user's checkout named by ``CROSSBRIDGE_SRC``, otherwise the
pinned snapshot at ``../shared/crossbridge/src`` beside the repository. In CI (``CI`` true) it must be found.
CrossBridge dials its hard-coded database and sidecar hosts at import unless ``CROSSBRIDGE_HOOKS_ENABLED=false``,
so that is set here for this process and every child built from ``crossbridge_env()``; ``tests/run.sh`` puts the
whole pytest run in a loopback-only network namespace on top of that.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CROSSBRIDGE_SRC", "SAMPLES", "TESTS", "REPO", "ci", "crossbridge_env", "missing_reason"]

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SAMPLES = TESTS / "samples"


def ci() -> bool:
    """``CI`` read as a boolean the usual way: true, 1, yes, on (any case)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes", "on"}


def _locate() -> Path | None:
    named = os.environ.get("CROSSBRIDGE_SRC", "").strip()
    candidates = [Path(named)] if named else [REPO.parent / "shared" / "crossbridge" / "src"]
    for candidate in candidates:
        if (candidate / "core" / "__init__.py").is_file() or (candidate / "core").is_dir():
            return candidate.resolve()
    return None


CROSSBRIDGE_SRC: Path | None = _locate()


def missing_reason() -> str:
    """Why CrossBridge was not found, in words a user can act on."""
    named = os.environ.get("CROSSBRIDGE_SRC", "").strip()
    where = f"CROSSBRIDGE_SRC={named}" if named else f"{REPO.parent / 'shared' / 'crossbridge' / 'src'}"
    return f"CrossBridge not found at {where}: set CROSSBRIDGE_SRC to a CrossBridge checkout (its src/ with core/)"


def crossbridge_env(base: dict[str, str] | None = None, *, extra_path: tuple[Path, ...] = ()) -> dict[str, str]:
    """An environment for a child process that imports CrossBridge: on PYTHONPATH, hooks off, no leaked settings."""
    env = dict(os.environ if base is None else base)
    paths = [str(p) for p in extra_path]
    if CROSSBRIDGE_SRC is not None:
        paths.insert(0, str(CROSSBRIDGE_SRC))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["CROSSBRIDGE_HOOKS_ENABLED"] = "false"
    return env
