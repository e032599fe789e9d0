"""The README's install line works the day an OpenTelemetry core release lands (issue 11, item 6).

The contrib instrumentations pin ``opentelemetry-instrumentation`` exactly, and their release follows the core's
by days. In an environment that already holds the newest core, ``pip install crossbridge-otel`` keeps the installed
core and fails with ``ResolutionImpossible``; naming the core packages on the install line (as the README does) lets
pip move them to the release the contrib packages support. This test builds such an environment, offline, from the
wheelhouse ``tests/packaging/prepare-wheelhouse.sh`` downloads before pytest (``tests/run.sh``), and installs into it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version
from support.crossbridge_target import REPO, ci

WHEELHOUSE = Path(os.environ.get("CROSSBRIDGE_OTEL_WHEELHOUSE", "~/.cache/crossbridge-otel/wheelhouse")).expanduser()
CORE = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp", "opentelemetry-instrumentation")


def _newest(project: str) -> str:
    """The newest version of ``project`` in the wheelhouse."""
    pattern = re.compile(rf"^{project.replace('-', '_')}-([^-]+)-")
    versions = [m.group(1) for f in WHEELHOUSE.iterdir() if (m := pattern.match(f.name))]
    assert versions, f"no {project} wheel in {WHEELHOUSE}"
    return str(max(versions, key=Version))


@pytest.fixture(scope="module")
def user_env(tmp_path_factory):
    """A virtual environment that already holds the newest OpenTelemetry core, and how to run its pip offline."""
    if not WHEELHOUSE.is_dir():
        reason = f"no wheelhouse at {WHEELHOUSE}: run tests/packaging/prepare-wheelhouse.sh (tests/run.sh does)"
        if ci():
            pytest.fail(reason)
        pytest.skip(reason)
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def pip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), "-m", "pip", *args], env=env, capture_output=True, text=True,
                              timeout=600)

    newest = {name: _newest(name) for name in ("opentelemetry-sdk", "opentelemetry-instrumentation")}
    pinned = [f"opentelemetry-sdk=={newest['opentelemetry-sdk']}",
              f"opentelemetry-exporter-otlp=={newest['opentelemetry-sdk']}",
              f"opentelemetry-instrumentation=={newest['opentelemetry-instrumentation']}"]
    done = pip("install", "-q", *pinned)
    assert done.returncode == 0, done.stderr
    return python, pip


def _source_copy(into: Path) -> Path:
    """The package's source, outside the repository (pip builds in the source tree)."""
    copy = into / "crossbridge-otel"
    for part in ("crossbridge_otel", "instrumentors"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, copy / name)
    return copy


def test_readme_install_line_names_the_core_packages():
    """The README's install line is the one this test runs: the package and the four core packages by name."""
    lines = [line for line in (REPO / "README.md").read_text().splitlines()
             if line.startswith("pip install ./crossbridge-otel")]
    assert lines and all(name in lines[0].split() for name in CORE), lines


def test_install_line_succeeds_over_a_newer_core(user_env, tmp_path):
    """Into an environment with the newest core, the README's line installs a consistent set that starts."""
    python, pip = user_env
    source = _source_copy(tmp_path)
    done = pip("install", "-q", f"{source}[libraries]", *CORE)
    assert done.returncode == 0, done.stderr[-3000:]
    checked = pip("check")
    assert checked.returncode == 0, checked.stdout
    started = subprocess.run(
        [str(python.with_name("opentelemetry-instrument")), str(python), "-c", "import crossbridge_otel; print('ok')"],
        capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
             "OTEL_LOGS_EXPORTER": "none"},
    )
    assert started.returncode == 0 and started.stdout.strip() == "ok", started.stderr
