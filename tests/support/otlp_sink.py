"""A small OTLP/HTTP receiver for tests: real protobuf requests on 127.0.0.1, kept in thread-safe lists.

Usage::

    with OtlpSink() as sink:                       # free port on 127.0.0.1
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
        ...run the instrumented program...
        assert sink.wait_for(lambda s: s.spans(name="coverage.parse"), timeout=10)
        resource, span = sink.spans(name="coverage.parse")[0]

``sink.traces`` / ``sink.logs`` / ``sink.metrics`` hold the decoded ``Export*ServiceRequest`` messages;
``spans()``, ``log_records()`` and ``metric_names()`` flatten them, with resource attributes as a dict
(:func:`attributes`); ``counts()`` gives spans, log records and metric data points received.

Like a real collector it speaks HTTP/1.1 with keep-alive, and records which connection each request came on
(``sink.arrivals``: path, client address, the decoded message or None). It can misbehave on purpose:

- ``OtlpSink(status=503)`` answers every request with that status (400, 500, 503, ...), storing nothing;
- ``OtlpSink(mode="garbage")`` answers 200 with a body that is not protobuf (the request is stored);
- ``OtlpSink(mode="partial", reject=1)`` answers 200 with an OTLP partial success rejecting ``reject`` items
  per request (stored; ``sink.rejected`` counts them);
- ``OtlpSink(mode="hang")`` reads each request and never answers (nothing stored);
- ``OtlpSink(delay=0.5)`` answers each request half a second late (an export stays in flight);
- ``sink.stop()`` / ``sink.start()`` kill the receiver (open connections reset) and start it again on the same
  port (a collector killed and restarted).

:class:`BlackHole` accepts connections and never reads or answers (a hung collector at the TCP level).
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["BlackHole", "OtlpSink", "attributes", "count_points"]

_ROUTES = {
    "/v1/traces": ("traces", ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/logs": ("logs", ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}
_PARTIAL = {
    "traces": lambda n: ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
        rejected_spans=n, error_message="rejected by the test sink")),
    "logs": lambda n: ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(
        rejected_log_records=n, error_message="rejected by the test sink")),
    "metrics": lambda n: ExportMetricsServiceResponse(partial_success=ExportMetricsPartialSuccess(
        rejected_data_points=n, error_message="rejected by the test sink")),
}
MODES = ("ok", "garbage", "partial", "hang")


def attributes(key_values: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list → plain dict (string, bool, int, double; arrays as lists)."""
    out: dict[str, Any] = {}
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        elif kind is not None:
            out[kv.key] = getattr(value, kind)
    return out


def count_points(request: ExportMetricsServiceRequest) -> int:
    """Data points in one metrics request."""
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind:
                    total += len(getattr(metric, kind).data_points)
    return total


def _items(name: str, message: Any) -> int:
    if name == "traces":
        return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
    if name == "logs":
        return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
    return count_points(message)


class OtlpSink:
    """OTLP/HTTP protobuf receiver on 127.0.0.1 (see the module docstring)."""

    def __init__(self, status: int = 200, mode: str = "ok", reject: int = 1, delay: float = 0.0) -> None:
        assert mode in MODES, mode
        self.delay = delay
        self.status = status
        self.mode = mode
        self.reject = reject
        self.traces: list[ExportTraceServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.arrivals: list[tuple[str, tuple[str, int], Any]] = []  # (path, client address, message or None)
        self.rejected = {"traces": 0, "logs": 0, "metrics": 0}
        self.requests = 0
        self._lock = threading.Lock()
        self._release = threading.Event()  # lets hung handlers go when the sink closes
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._open: set[socket.socket] = set()
        self._bind()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def _bind(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server

    def start(self) -> None:
        """Serve (again, on the same port after :meth:`stop`)."""
        if self._server is None:
            self._bind()
        assert self._server is not None
        threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True).start()

    def stop(self) -> None:
        """Stop listening and reset every open connection, as a killed collector does."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns, self._open = set(self._open), set()
        for conn in conns:
            try:  # RST instead of FIN: the client sees the connection reset
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> OtlpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.stop()

    def counts(self) -> dict[str, int]:
        """Spans, log records and metric data points received and stored."""
        with self._lock:
            return {
                "spans": sum(_items("traces", m) for m in self.traces),
                "logs": sum(_items("logs", m) for m in self.logs),
                "metrics": sum(_items("metrics", m) for m in self.metrics),
            }

    def corrupt(self) -> int:
        """Requests whose body did not decode as the OTLP message of their path."""
        with self._lock:
            return sum(1 for _, _, message in self.arrivals if message is None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the collector's receiver

            def setup(self) -> None:
                super().setup()
                with sink._lock:
                    sink._open.add(self.connection)

            def finish(self) -> None:
                with sink._lock:
                    sink._open.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                with sink._lock:
                    sink.requests += 1
                route = _ROUTES.get(self.path)
                if sink.delay:
                    time.sleep(sink.delay)
                if sink.mode == "hang":
                    sink._release.wait()
                    self.close_connection = True
                    return
                if sink.status != 200 or route is None:
                    self._answer(sink.status if route else 404, b"")
                    return
                name, request_type, response_type = route
                message = request_type()
                try:
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding == "deflate":
                        body = zlib.decompress(body)
                    message.ParseFromString(body)
                    decoded = True
                except (DecodeError, OSError, zlib.error):
                    decoded = False
                with sink._lock:
                    sink.arrivals.append((self.path, self.client_address, message if decoded else None))
                    if decoded:
                        getattr(sink, name).append(message)
                if not decoded:
                    self._answer(400, b"")
                elif sink.mode == "garbage":
                    self._answer(200, b"\xff\x00 this is not a protobuf \x07\x99")
                elif sink.mode == "partial":
                    rejected = min(sink.reject, _items(name, message))
                    with sink._lock:
                        sink.rejected[name] += rejected
                    self._answer(200, _PARTIAL[name](rejected).SerializeToString())
                else:
                    self._answer(200, response_type().SerializeToString())

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def spans(self, name: str | None = None) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every received span, optionally only those named ``name``."""
        with self._lock:
            requests = list(self.traces)
        return [
            (attributes(rs.resource.attributes), span)
            for request in requests for rs in request.resource_spans
            for ss in rs.scope_spans for span in ss.spans
            if name is None or span.name == name
        ]

    def log_records(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, log record) for every received log record."""
        with self._lock:
            requests = list(self.logs)
        return [
            (attributes(rl.resource.attributes), record)
            for request in requests for rl in request.resource_logs
            for sl in rl.scope_logs for record in sl.log_records
        ]

    def metric_names(self) -> set[str]:
        """Names of every received metric."""
        with self._lock:
            requests = list(self.metrics)
        return {m.name for r in requests for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}

    def metrics_named(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, metric) for every received metric called ``name``."""
        with self._lock:
            requests = list(self.metrics)
        return [
            (attributes(rm.resource.attributes), m)
            for r in requests for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            if m.name == name
        ]

    def wait_for(self, predicate: Callable[[OtlpSink], Any], timeout: float = 10.0) -> bool:
        """Poll ``predicate(self)`` until it is truthy or ``timeout`` seconds pass; returns whether it held."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections, reads nothing back and never answers."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="otlp-black-hole", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._held.append(conn)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()

    @property
    def connections(self) -> int:
        return len(self._held)
