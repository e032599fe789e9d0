"""A fake Bitbucket Cloud 2.0 API on 127.0.0.1, reached exactly as CrossBridge's ``BitbucketConnector`` reaches
the real one.

The real connector talks to ``https://api.bitbucket.org``: through its atlassian client *and* through
``requests.get/post`` on hard-coded ``https://api.bitbucket.org/2.0/...`` URLs (``list_files``,
``list_all_files``, ``write_file``, ``write_files``, branches with a ``/``), so no constructor argument or
attribute can point all of it elsewhere. The tests route it the way a corporate network does: ``https_proxy``
names this server and ``REQUESTS_CA_BUNDLE`` trusts a CA made for the run (``FakeBitbucket.routing_env``). The
server answers ``CONNECT api.bitbucket.org:443`` and then speaks TLS with a certificate for that name, so
nothing is resolved or dialled but 127.0.0.1. It also answers plain HTTP (the base URL ``serve()`` yields) and
the Bitbucket Server route CrossBridge's ``read_file`` uses with ``is_cloud=False``.

Answers are shaped like Bitbucket Cloud's: errors are ``{"type": "error", "error": {"message": ...}}`` (a missing
file: ``No such file or directory: <path>``); a 429 is ``text/plain`` "Rate limit for this resource has been
exceeded" without ``Retry-After``. ``FakeBitbucket.fail_next`` scripts the statuses of the next requests to a
path (``text/plain`` body, like a gateway error page).
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
HOST = "api.bitbucket.org"
PREFIX = "/2.0/repositories/acme/demo"
SERVER_PREFIX = "/rest/api/1.0/projects/PROJ/repos/demo"
RATE_LIMITED = "Rate limit for this resource has been exceeded"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class FakeBitbucket:
    """What the fake holds: files on ``main``, requests seen (method, path with query, headers), commits posted,
    429s still to answer on PR creation, scripted failures ``{(method, path): [(status, headers), ...]}``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.files = {"src/LoginTest.java": (SAMPLES / "LoginTest.java").read_text(), "README.md": "# demo\n"}
        self.commits: list[bytes] = []
        self.pr_429 = 0
        self.fail: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        self.proxy_url = ""
        self.ca_file = ""

    @property
    def routing_env(self) -> dict[str, str]:
        """Environment that sends ``https://api.bitbucket.org`` to this server (and trusts its certificate)."""
        return {"https_proxy": self.proxy_url, "HTTPS_PROXY": self.proxy_url, "REQUESTS_CA_BUNDLE": self.ca_file}

    def fail_next(self, method: str, path: str, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """The next ``len(statuses)`` ``method`` requests to ``path`` (no query) get these statuses (and headers)."""
        self.fail.setdefault((method, path), []).extend((status, dict(headers or {})) for status in statuses)

    def paths(self, method: str) -> list[str]:
        """The paths (with query) of the ``method`` requests seen, in order."""
        return [path for m, path, _ in self.requests if m == method]


def _error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"message": message}}


def _listing(files: dict[str, str], sub: str) -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for name, content in files.items():
        if sub and not name.startswith(sub + "/"):
            continue
        head = name[len(sub) + 1:].split("/")[0] if sub else name.split("/")[0]
        path = f"{sub}/{head}" if sub else head
        if path == name:
            entries[path] = {"path": path, "type": "commit_file", "size": len(content.encode()),
                             "commit": {"hash": "abc123"}}
        else:
            entries[path] = {"path": path, "type": "commit_directory"}
    return [entries[k] for k in sorted(entries)]


def _pr() -> dict[str, Any]:
    return {"id": 7, "title": "t", "description": "b", "state": "OPEN",
            "source": {"branch": {"name": "feature"}}, "destination": {"branch": {"name": "main"}},
            "links": {"html": {"href": "https://bitbucket.org/acme/demo/pull-requests/7"}}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect
    timeout = 10
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def state(self) -> FakeBitbucket:
        return self.server.state

    def _send(self, code: int, body: Any = "", headers: dict[str, str] | None = None) -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _seen(self, method: str) -> tuple[str, bool]:
        """Records the request; True when a scripted failure was answered instead."""
        self.state.requests.append((method, self.path, dict(self.headers)))
        path = unquote(self.path.split("?")[0])
        scripted = self.state.fail.get((method, path))
        if not scripted:
            return path, False
        status, headers = scripted.pop(0)
        if method == "POST":
            self._body()
        self._send(status, "Internal Server Error" if status >= 500 else "error", headers)
        return path, True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_CONNECT(self) -> None:  # noqa: N802
        """The proxy tunnel: only to api.bitbucket.org:443, answered here over TLS."""
        self.state.requests.append(("CONNECT", self.path, dict(self.headers)))
        if self.path != f"{HOST}:443":
            self._send(403, "only api.bitbucket.org is served here")
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        tls = self.server.tls.wrap_socket(self.connection, server_side=True)
        _Handler(tls, self.client_address, self.server)  # serves the requests inside the tunnel
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        path, answered = self._seen("GET")
        if answered:
            return None
        if path.startswith(SERVER_PREFIX + "/raw/"):
            name = path[len(SERVER_PREFIX + "/raw/"):]
            if name in self.state.files:
                return self._send(200, self.state.files[name])
            return self._send(404, {"errors": [{"message": f"The path \"{name}\" does not exist at revision"}]})
        rest = path[len(PREFIX):] if path.startswith(PREFIX) else None
        if rest == "/refs/branches":
            return self._send(200, {"values": [{"name": "main", "target": {"hash": "abc123"}}], "pagelen": 10})
        if rest is not None and rest.startswith("/refs/branches/"):
            if rest.rsplit("/", 1)[1] != "main":
                return self._send(404, _error("Branch not found"))
            return self._send(200, {"name": "main", "target": {"hash": "abc123"}})
        if rest is not None and rest.startswith("/src/"):
            return self._src(rest[len("/src/"):])
        if rest is not None and rest.startswith("/commits/"):
            return self._send(200, {"values": [{"hash": "def4567890"}]})
        if rest == "/pullrequests/7":
            return self._send(200, _pr())
        if rest == "/pullrequests":
            return self._send(200, {"values": [_pr()]})
        return self._send(404, _error("Resource not found"))

    def _src(self, ref_and_path: str) -> None:
        ref, _, sub = ref_and_path.partition("/")
        sub = sub.strip("/")
        if ref not in ("main", "abc123", "feature"):
            return self._send(404, _error(f"Commit not found: {ref}"))
        if sub in self.state.files:
            return self._send(200, self.state.files[sub])
        entries = _listing(self.state.files, sub)
        if entries or not sub:
            return self._send(200, {"values": entries, "pagelen": 100})
        return self._send(404, _error(f"No such file or directory: {sub}"))

    def do_POST(self) -> None:  # noqa: N802
        path, answered = self._seen("POST")
        if answered:
            return None
        body = self._body()
        rest = path[len(PREFIX):] if path.startswith(PREFIX) else None
        if rest == "/refs/branches":
            return self._send(201, {"name": json.loads(body)["name"], "target": {"hash": "def456"}})
        if rest == "/src":
            self.state.commits.append(body)
            return self._send(201, "")
        if rest == "/pullrequests":
            if self.state.pr_429 > 0:
                self.state.pr_429 -= 1
                return self._send(429, RATE_LIMITED)
            return self._send(201, _pr())
        return self._send(404, _error("Resource not found"))

    def do_DELETE(self) -> None:  # noqa: N802
        _, answered = self._seen("DELETE")
        if not answered:
            self._body()
            self._send(204, "")


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA made for this run and a certificate for api.bitbucket.org it signed: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crossbridge-otel test CA")])

    def build(subject: x509.Name, public: Any, ca: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False))

    ca_cert = (build(ca_name, ca_key.public_key(), True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
               .sign(ca_key, hashes.SHA256()))
    leaf = (build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]), key.public_key(), False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    files[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return files


@contextmanager
def serve() -> Iterator[tuple[str, FakeBitbucket]]:
    """Run the fake on a free 127.0.0.1 port; yields (plain-HTTP base URL ending in /2.0, state)."""
    state = FakeBitbucket()
    with tempfile.TemporaryDirectory(prefix="fake-bitbucket-") as tmp:
        ca, cert, key = _certificates(Path(tmp))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.state = state  # type: ignore[attr-defined]
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        server.tls = tls  # type: ignore[attr-defined]
        port = server.server_address[1]
        state.proxy_url, state.ca_file = f"http://127.0.0.1:{port}", str(ca)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}/2.0", state
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


@contextmanager
def loopback_names_only() -> Iterator[list[str]]:
    """While active, ``socket.getaddrinfo`` refuses every name but loopback; yields the names asked for."""
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        if host not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"only loopback names are resolved in these tests: {host}")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield asked
    finally:
        socket.getaddrinfo = real


@pytest.fixture
def bitbucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake Bitbucket, with https://api.bitbucket.org routed to it; no name but loopback may be resolved."""
    with serve() as (_, state), loopback_names_only() as asked:
        for name, value in state.routing_env.items():
            monkeypatch.setenv(name, value)
        yield state
    assert set(asked) <= LOOPBACK, f"resolved names other than loopback: {set(asked) - LOOPBACK}"
