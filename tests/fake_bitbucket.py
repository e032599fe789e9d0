"""A fake Bitbucket Cloud 2.0 API on 127.0.0.1 for the CrossBridge-shaped ``BitbucketConnector``.

Serves ``/2.0/repositories/acme/demo/...``: branches, ``src`` listings and raw files, commits (``POST /src``),
pull requests (with a configurable number of 429 answers first). The connector fixture reads its base URL from
``CROSSBRIDGE_BITBUCKET_API_URL`` and scales its 429 sleeps by ``CROSSBRIDGE_BITBUCKET_RETRY_SCALE``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SAMPLES = Path(__file__).resolve().parent / "samples"
PREFIX = "/2.0/repositories/acme/demo"


class FakeBitbucket:
    """State of the fake API: requests seen (method, path, headers), files, commits, 429s still to send."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.pr_429 = 0
        self.files = {"src/LoginTest.java": (SAMPLES / "LoginTest.java").read_text(), "README.md": "# demo\n"}
        self.commits: list[dict[str, list[str]]] = []


def _listing(files: dict[str, str], sub: str) -> dict[str, str]:
    entries = {}
    for name in files:
        if sub and not name.startswith(sub + "/"):
            continue
        tail = name[len(sub) + 1:] if sub else name
        head = tail.split("/")[0]
        entries[f"{sub}/{head}" if sub else head] = "commit_directory" if "/" in tail else "commit_file"
    return entries


def _handler(state: FakeBitbucket) -> type:
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

        def _seen(self, method: str) -> str | None:
            path = self.path.split("?")[0]
            state.requests.append((method, path, dict(self.headers)))
            return path[len(PREFIX):] if path.startswith(PREFIX) else None

        def do_GET(self) -> None:  # noqa: N802
            rest = self._seen("GET")
            if rest == "/refs/branches":
                return self._send(200, {"values": [{"name": "main", "target": {"hash": "abc123"}}]})
            if rest is not None and rest.startswith("/refs/branches/"):
                if rest.rsplit("/", 1)[1] != "main":
                    return self._send(404, {"error": {"message": "no branch"}})
                return self._send(200, {"name": "main", "target": {"hash": "abc123"}})
            if rest is not None and rest.startswith("/src/main/"):
                sub = rest[len("/src/main/"):].strip("/")
                if sub in state.files:
                    return self._send(200, state.files[sub])
                entries = _listing(state.files, sub)
                if entries:
                    return self._send(200, {"values": [{"path": p, "type": t} for p, t in sorted(entries.items())]})
            if rest is not None and rest.startswith("/pullrequests/7"):
                return self._send(200, {"id": 7, "title": "t", "source": {"branch": {"name": "feature"}},
                                        "destination": {"branch": {"name": "main"}}, "state": "OPEN"})
            return self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            rest = self._seen("POST")
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if rest == "/refs/branches":
                return self._send(201, {"name": json.loads(body)["name"], "target": {"hash": "def456"}})
            if rest == "/src":
                state.commits.append(dict(parse_qs(body)))
                return self._send(201, "")
            if rest == "/pullrequests":
                if state.pr_429 > 0:
                    state.pr_429 -= 1
                    return self._send(429, {"error": {"message": "rate limited"}})
                return self._send(201, {"id": 7, "state": "OPEN",
                                        "links": {"html": {"href": "http://127.0.0.1/acme/demo/pull-requests/7"}}})
            return self._send(404, {"error": {"message": "unknown"}})

    return Handler


@contextmanager
def serve() -> Iterator[tuple[str, FakeBitbucket]]:
    """Run the fake API on a free 127.0.0.1 port; yields (base URL ending in /2.0, state)."""
    state = FakeBitbucket()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/2.0", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
