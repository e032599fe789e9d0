"""A small OTLP/HTTP receiver for tests: real protobuf requests on 127.0.0.1, kept in thread-safe lists.

Usage::

    with OtlpSink() as sink:                       # free port on 127.0.0.1
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
        ...run the instrumented program...
        assert sink.wait_for(lambda s: s.spans(name="coverage.parse"), timeout=10)
        resource, span = sink.spans(name="coverage.parse")[0]

``sink.traces`` / ``sink.logs`` / ``sink.metrics`` hold the decoded ``Export*ServiceRequest`` messages;
``spans()``, ``log_records()`` and ``metric_names()`` flatten them, with resource attributes as a dict
(:func:`attributes`). ``OtlpSink(status=503)`` answers every request with that status instead (a refusing
collector); :class:`BlackHole` accepts connections and never answers (a hung collector).
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["BlackHole", "OtlpSink", "attributes"]

_ROUTES = {
    "/v1/traces": ("traces", ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/logs": ("logs", ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


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


class OtlpSink:
    """OTLP/HTTP protobuf receiver on 127.0.0.1 (see the module docstring)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.traces: list[ExportTraceServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                with sink._lock:
                    sink.requests += 1
                route = _ROUTES.get(self.path)
                if sink.status != 200 or route is None:
                    self.send_response(sink.status if route else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                name, request_type, response_type = route
                message = request_type()
                message.ParseFromString(body)
                with sink._lock:
                    getattr(sink, name).append(message)
                payload = response_type().SerializeToString()
                self.send_response(200)
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
