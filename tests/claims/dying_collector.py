"""An OTLP/HTTP receiver on 127.0.0.1 that can die in the middle of a request, or hold one (claims tests only).

The idea of tests/support/otlp_sink.py, cut down and given the two faults the in-flight claims need, on raw sockets so
the moment of death is exact:

- ``die_on="/v1/traces"``: the first request to that path is read up to half its body, then the collector dies:
  the listening socket closes and every open connection is reset (``SO_LINGER`` 0), nothing of that request is
  stored. ``revive_after`` seconds later it listens again on the same port (a collector restarted; None: never);
- ``hold=1.0``: the ``hold_nth`` traces request (first by default) is stored and answered only after that long
  (an export in flight).

``spans`` / ``logs`` hold ``(resource attributes, span or log record)`` pairs in arrival order.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
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

    def __init__(self, die_on: str | None = None, revive_after: float | None = 0.3, hold: float = 0.0,
                 hold_nth: int = 1) -> None:
        self.die_on = die_on
        self.revive_after = revive_after
        self.hold = hold
        self.hold_nth = hold_nth
        self._traces_seen = 0
        self.spans: list[tuple[dict[str, Any], Any]] = []
        self.logs: list[tuple[dict[str, Any], Any]] = []
        self.deaths: list[str] = []  # what was in flight when it died
        self.held = threading.Event()  # set while the held request waits for its answer
        self._held_once = False
        self._lock = threading.Lock()
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
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

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
            self._server.close()
            for conn in self._conns:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            self._conns.clear()
        if self.revive_after is None:
            return  # dead for good
        time.sleep(self.revive_after)
        if not self._stopped:
            self._listen()

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
                self._store(path, headers.get("content-encoding", ""), body)
                if path == "/v1/traces":
                    self._traces_seen += 1
                if self.hold and path == "/v1/traces" and self._traces_seen == self.hold_nth and not self._held_once:
                    self._held_once = True
                    self.held.set()
                    time.sleep(self.hold)
                    self.held.clear()
                answer = (ExportTraceServiceResponse() if path == "/v1/traces" else ExportLogsServiceResponse())
                data = answer.SerializeToString()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                             + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)

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
        with self._lock:
            self._server.close()
            for conn in self._conns:
                conn.close()

    def __enter__(self) -> DyingCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
