"""Area-instrumentor test set-up: instrument with injected providers, undo everything afterwards.

- ``instrument(cls, ...)`` instruments an area (or a contrib instrumentor) with the test's in-memory
  providers and uninstruments it at teardown (BaseInstrumentor is a singleton per class);
- ``threads``: opentelemetry-instrumentation-threading, as ``opentelemetry-instrument`` loads it;
- ``venv_path`` / ``three_test_project``: a pytest project the pytest adapter can run;
- ``fake_bitbucket``: the fake Bitbucket Cloud API on 127.0.0.1, which CrossBridge's ``BitbucketConnector``
  (``https://api.bitbucket.org`` hard-coded) reaches through the fake's HTTPS proxy, as on a corporate network.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.areas import _clean_state, instrument  # noqa: F401  (fixtures, shared with the audit tests)
from support.fake_bitbucket import FakeBitbucket, loopback_names_only, serve

from crossbridge_otel.retry import ratelimit
from crossbridge_otel.retry.ratelimit import reset_buckets

VENV_BIN = str(Path(sys.executable).parent)
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture
def threads(instrument: Callable[..., Any]) -> Any:
    """Context follows work into threads and thread pools (as under opentelemetry-instrument)."""
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    return instrument(ThreadingInstrumentor)


@pytest.fixture
def venv_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The venv's bin (with ``pytest``) first on PATH for the pytest adapter."""
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture
def three_test_project(tmp_path: Path) -> Path:
    """A pytest project with 3 tests (1 failing); each test writes the TRACEPARENT it was given."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "test_sample.py").write_text(
        "import os, pathlib\n\n"
        "def _seen():\n"
        "    pathlib.Path(__file__).with_name('traceparent.txt').write_text(os.environ.get('TRACEPARENT', ''))\n\n"
        "def test_one():\n    _seen()\n\n"
        "def test_two():\n    assert True\n\n"
        "def test_three():\n    assert 1 == 2\n"
    )
    return proj


@pytest.fixture
def fake_bitbucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeBitbucket]]:
    """The fake Bitbucket on 127.0.0.1; ``https://api.bitbucket.org`` reaches it through its HTTPS proxy (the
    environment of ``FakeBitbucket.routing_env``), and no name but loopback is resolved."""
    with serve() as (base, state), loopback_names_only():
        for name, value in state.routing_env.items():
            monkeypatch.setenv(name, value)
        yield base, state


@pytest.fixture(autouse=True)
def _fresh_buckets() -> Iterator[None]:
    """No token bucket outlives a test."""
    reset_buckets()
    yield
    reset_buckets()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The buckets' monotonic clock stands still (sleeps are real): every wait is exact, whatever the load."""
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=lambda: 1000.0, sleep=time.sleep))
