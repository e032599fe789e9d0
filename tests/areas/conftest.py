"""Area-instrumentor test set-up: instrument with injected providers, undo everything afterwards.

- ``instrument(cls, ...)`` instruments an area (or a contrib instrumentor) with the test's in-memory
  providers and uninstruments it at teardown (BaseInstrumentor is a singleton per class);
- ``threads``: opentelemetry-instrumentation-threading, as ``opentelemetry-instrument`` loads it;
- ``venv_path`` / ``three_test_project``: a pytest project the pytest adapter can run;
- ``fake_bitbucket``: a Bitbucket 2.0 API on 127.0.0.1 (the fixture connector reads
  ``CROSSBRIDGE_BITBUCKET_API_URL``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crossbridge_otel import _guard, status

VENV_BIN = str(Path(sys.executable).parent)
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Empty status registry and contained-failure counts around every test."""
    status.clear()
    _guard.reset()
    yield
    status.clear()
    _guard.reset()


@pytest.fixture
def instrument(telemetry: Any) -> Iterator[Callable[..., Any]]:
    """Instrument ``cls()`` with the in-memory providers; every one is uninstrumented at teardown."""
    done: list[Any] = []

    def _instrument(cls: type, **kwargs: Any) -> Any:
        inst = cls()
        inst.instrument(**{**telemetry.providers, **kwargs})
        done.append(inst)
        return inst

    yield _instrument
    for inst in reversed(done):
        inst.uninstrument()


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


# -- a Bitbucket 2.0 API on 127.0.0.1 ----------------------------------------------------------------

class Bitbucket:
    """State of the fake API: requests seen (method, path, headers), files, 429s still to send."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.pr_429 = 0
        self.files = {"src/LoginTest.java": (SAMPLES / "LoginTest.java").read_text(), "README.md": "# demo\n"}


def _handler(state: Bitbucket) -> type:
    prefix = "/2.0/repositories/acme/demo"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _seen(self, method: str) -> str:
            path = self.path.split("?")[0]
            state.requests.append((method, path, dict(self.headers)))
            return path[len(prefix):] if path.startswith(prefix) else "\0"

        def do_GET(self) -> None:  # noqa: N802
            rest = self._seen("GET")
            if rest == "/refs/branches":
                return self._send(200, {"values": [{"name": "main", "target": {"hash": "abc123"}}]})
            if rest == "/refs/branches/main":
                return self._send(200, {"name": "main", "target": {"hash": "abc123"}})
            if rest.startswith("/src/main/"):
                sub = rest[len("/src/main/"):].strip("/")
                if sub in state.files:
                    return self._send(200, state.files[sub])
                entries = {}
                for f in state.files:
                    if sub and not f.startswith(sub + "/"):
                        continue
                    tail = f[len(sub) + 1:] if sub else f
                    full = f"{sub}/{tail.split('/')[0]}" if sub else tail.split("/")[0]
                    entries[full] = "commit_directory" if "/" in tail else "commit_file"
                if entries:
                    return self._send(200, {"values": [{"path": p, "type": t} for p, t in sorted(entries.items())]})
            if rest.startswith("/pullrequests/7"):
                return self._send(200, {"id": 7, "title": "t", "source": {"branch": {"name": "feature"}},
                                        "destination": {"branch": {"name": "main"}}, "state": "OPEN"})
            return self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            rest = self._seen("POST")
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if rest == "/refs/branches":
                return self._send(201, {"name": "feature", "target": {"hash": "def456"}})
            if rest == "/src":
                return self._send(201, "")
            if rest == "/pullrequests":
                if state.pr_429 > 0:
                    state.pr_429 -= 1
                    return self._send(429, {"error": {"message": "rate limited"}})
                return self._send(201, {"id": 7, "state": "OPEN", "links": {"html": {"href": "http://x/7"}}})
            return self._send(404, {"error": {"message": "unknown"}})

    return Handler


@pytest.fixture
def fake_bitbucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Bitbucket]]:
    """The fake Bitbucket API on 127.0.0.1 (PR 429 sleeps scaled down by the fixture's knob)."""
    state = Bitbucket()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/2.0"
    monkeypatch.setenv("CROSSBRIDGE_BITBUCKET_API_URL", base)
    monkeypatch.setenv("CROSSBRIDGE_BITBUCKET_RETRY_SCALE", "0.0005")
    try:
        yield base, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
