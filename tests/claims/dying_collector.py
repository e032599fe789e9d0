"""An OTLP/HTTP receiver on 127.0.0.1 that can die in the middle of a request, or hold one (claims tests only).

The idea of tests/support/otlp_sink.py, cut down and given the two faults the in-flight claims need, on raw sockets so
the moment of death is exact:

- ``die_on="/v1/traces"``: the first request to that path is read up to half its body, then the collector dies:
  the listening socket closes and every open connection is reset (``SO_LINGER`` 0), nothing of that request is
  stored. :attr:`died` is set at that moment (the batch was in flight: half its body read); :meth:`revive` listens
  again on the same port (a collector restarted), when the test says so. A request of another connection that was
  fully read by then is stored *and answered* before the resets: one stored but never answered would be re-sent
  and arrive twice (OTLP has no request ids), a duplicate the test would have injected, not found;
- ``hold_nth=N``: the N-th traces request is stored, :attr:`held` is set, and it is answered only once the test
  calls :meth:`release` (an export in flight for as long as the test needs; :meth:`close` releases it too).

No timing: every moment is an event the test awaits or triggers.

``spans`` / ``logs`` hold ``(resource attributes, span or log record)`` pairs in arrival order.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import zlib
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["DyingCollector", "attributes"]


def attributes(key_values: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list → plain dict of scalar values."""
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value"))
            for kv in key_values if kv.value.WhichOneof("value")}


class DyingCollector:
    """See the module docstring."""

    def __init__(self, die_on: str | None = None, hold_nth: int | None = None) -> None:
        self.die_on = die_on
        self.hold_nth = hold_nth
        self._traces_seen = 0
        self.spans: list[tuple[dict[str, Any], Any]] = []
        self.logs: list[tuple[dict[str, Any], Any]] = []
        self.deaths: list[str] = []  # what was in flight when it died
        self.died = threading.Event()  # set once the collector died in the middle of a request
        self.held = threading.Event()  # set once the held request is stored and waits for its answer
        self._release = threading.Event()
        self._lock = threading.Condition()
        self._answering = 0  # fully read requests being stored and answered (death waits for them)
        self._dead = False
        self._conns: set[socket.socket] = set()
        self._stopped = False
        self.port = 0
        self._listen()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        self.port = server.getsockname()[1]
        server.listen(16)
        self._server = server
        self._acceptor = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._acceptor.start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _die(self, what: str) -> None:
        with self._lock:
            self.deaths.append(what)
            self._dead = True
            _stop_listening(self._server)
            self._lock.wait_for(lambda: self._answering == 0)
            for conn in self._conns:
                _reset(conn)
            self._conns.clear()
        self.died.set()

    def revive(self) -> None:
        """Listen again on the same port (the collector restarted)."""
        with self._lock:
            self._dead = False
        self._acceptor.join()  # the old listener is gone for good once its accept() returned: the port is free
        if not self._stopped:
            self._listen()

    def release(self) -> None:
        """Answer the held request."""
        self._release.set()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                path = line.split()[1].decode()
                headers: dict[str, str] = {}
                while (header := reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if path == self.die_on and not self.deaths:
                    reader.read(length // 2)
                    self._die(path)
                    return
                body = reader.read(length)
                with self._lock:
                    if self._dead:  # read after the death: reset like the others, nothing stored
                        _reset(conn)
                        return
                    self._answering += 1
                try:
                    self._answer(conn, path, headers.get("content-encoding", ""), body)
                finally:
                    with self._lock:
                        self._answering -= 1
                        self._lock.notify_all()
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket, path: str, encoding: str, body: bytes) -> None:
        self._store(path, encoding, body)
        if path == "/v1/traces":
            with self._lock:
                self._traces_seen += 1
                hold = self._traces_seen == self.hold_nth
            if hold:
                self.held.set()
                self._release.wait()
        answer = (ExportTraceServiceResponse() if path == "/v1/traces" else ExportLogsServiceResponse())
        data = answer.SerializeToString()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                     + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)

    def _store(self, path: str, encoding: str, body: bytes) -> None:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if path == "/v1/traces":
            traces = ExportTraceServiceRequest.FromString(body)
            with self._lock:
                self.spans += [(attributes(rs.resource.attributes), span)
                               for rs in traces.resource_spans for ss in rs.scope_spans for span in ss.spans]
        elif path == "/v1/logs":
            logs = ExportLogsServiceRequest.FromString(body)
            with self._lock:
                self.logs += [(attributes(rl.resource.attributes), record)
                              for rl in logs.resource_logs for sl in rl.scope_logs for record in sl.log_records]

    def close(self) -> None:
        self._stopped = True
        self._release.set()
        with self._lock:
            _stop_listening(self._server)
            for conn in self._conns:
                conn.close()

    def __enter__(self) -> DyingCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset(conn: socket.socket) -> None:
    """Close with an RST (``SO_LINGER`` 0), as a dying process's sockets are."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


def _stop_listening(server: socket.socket) -> None:
    """Close a listening socket for good: ``shutdown`` wakes the thread blocked in ``accept()`` (a bare ``close``
    leaves the socket listening until that call returns, and the port taken)."""
    try:
        server.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    server.close()
