"""Services area: logging set-up, sidecar API request attributes, sidecar client's own retry loop."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from support.spans import retry_events
from support.waiting import wait_until

from crossbridge_otel import libraries
from crossbridge_otel.instrumentors.services import ServicesInstrumentor

P = "crossbridge.services."


@pytest.fixture
def services(instrument):
    return instrument(ServicesInstrumentor)


@pytest.fixture
def root_logging():
    """setup_logging changes the root logger: put level and handlers back."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_setup_logging_span(services, telemetry, root_logging, tmp_path):
    """setup_logging: services.logging.setup with the level and the log file's name (not its directory)."""
    from services.logging_service import setup_logging

    path = setup_logging("WARNING", tmp_path / "logs")
    span = telemetry.span("services.logging.setup")
    assert span.attributes[P + "log_level"] == "WARNING"
    assert span.attributes[P + "log_file"] == path.name
    assert span.attributes["crossbridge.category"] == "general"


@pytest.fixture
def api_server(services):
    from services.sidecar_api import SidecarAPIServer

    server = SidecarAPIServer(host="127.0.0.1", port=0)
    yield server
    server.observer.stop(timeout=1.0)


def test_api_requests_get_our_attributes_on_fastapi_server_spans(api_server, telemetry):
    """With the FastAPI instrumentation, each request's server span carries area, category, route, status."""
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(api_server.app, tracer_provider=telemetry.tracer_provider)
    try:
        with TestClient(api_server.app) as client:
            assert client.get("/health").status_code == 200
            event = {"event_type": "test_start", "test_id": "t1", "data": {"test_name": "test_login"}}
            assert client.post("/events", json=event).status_code == 200
    finally:
        FastAPIInstrumentor.uninstrument_app(api_server.app)
    servers = [s for s in telemetry.spans() if s.kind == SpanKind.SERVER]
    assert len(servers) == 2 and all(s.parent is None for s in servers)
    assert [s.attributes[P + "route"] for s in servers] == ["/health", "/events"]
    assert all(s.attributes["crossbridge.area"] == "services" for s in servers)
    assert all(s.attributes[P + "status_code"] == 200 for s in servers)
    assert telemetry.spans("services.sidecar.request") == []
    assert telemetry.span("services.sidecar.api.init").attributes[P + "host"] == "127.0.0.1"


def test_api_request_spans_without_fastapi_instrumentation(api_server, telemetry):
    """Without FastAPI's instrumentation our middleware opens services.sidecar.request; a 422 is an error."""
    from fastapi.testclient import TestClient

    with TestClient(api_server.app) as client:
        assert client.post("/events", json={"data": {}}).status_code == 422
    span = telemetry.span("services.sidecar.request")
    assert span.kind == SpanKind.SERVER and span.attributes["error.type"] == "http_422"
    assert span.attributes[P + "route"] == "/events"


class _Sidecar:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.batches: list[Any] = []


def _sidecar_handler(state: _Sidecar) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            code = 503 if state.failures > 0 else 200
            state.failures -= 1
            if code == 200:
                state.batches.append(body)
            raw = b"{}"
            self.send_response(code)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def sidecar():
    state = _Sidecar(failures=1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _sidecar_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], state
    server.shutdown()
    server.server_close()


@pytest.fixture
def httpx_spans(telemetry):
    done = libraries.instrument(["httpx"], tracer_provider=telemetry.tracer_provider)
    yield
    libraries.uninstrument(done)


def _client(port: int, attempts: int = 3):
    from services.sidecar_client import RemoteSidecarClient, RemoteSidecarConfig

    config = RemoteSidecarConfig(host="127.0.0.1", port=port, retry_attempts=attempts, batch_timeout_ms=50)
    return RemoteSidecarClient(config, framework="pytest")


def test_client_non_200_retry_is_a_retry_event_and_httpx_spans_nest(services, httpx_spans, telemetry, sidecar):
    """A 503 then 200: one retry event (error.type 503), retry.attempts 2, both httpx spans under ours."""
    port, state = sidecar
    client = _client(port)
    client.send_event("test_start", {"test_name": "test_login"}, test_id="t1")
    # the client has no flush: its sender loop sends on its own schedule
    wait_until(lambda: client.get_stats()["batches_sent"] == 1, "the client sent its batch")
    client.stop()
    assert len(state.batches) == 1 and state.batches[0]["events"][0]["test_id"] == "t1"
    span = telemetry.span("services.sidecar.send")
    (event,) = retry_events(span)
    assert event.attributes["error.type"] == "503" and event.attributes["retry.will_retry"] is True
    assert span.attributes["retry.attempts"] == 2 and span.attributes[P + "events"] == 1
    assert span.status.status_code != StatusCode.ERROR
    posts = [s for s in telemetry.spans() if s.kind == SpanKind.CLIENT]
    assert len(posts) == 2 and all(p.parent.span_id == span.context.span_id for p in posts)
    assert type(client._http_client).__name__ == "AsyncClient", "the observing proxy is gone after the call"


def test_client_dead_port_drops_the_batch(services, telemetry):
    """Nothing listening: both tries fail (CrossBridge sleeps 1 s between), the last gives up: sidecar_send_failed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = _client(port, attempts=2)
    client.send_event("test_start", {}, test_id="t1")
    wait_until(lambda: client.get_stats()["events_failed"] == 1, "the client gave its batch up")
    client.stop()
    span = telemetry.span("services.sidecar.send")
    events = retry_events(span)
    assert [e.attributes["retry.will_retry"] for e in events] == [True, False]
    assert events[0].attributes["error.type"] == "httpx.ConnectError"
    assert events[0].attributes["retry.delay_s"] >= 0.9  # CrossBridge's own 2 ** 0 s
    assert span.attributes["error.type"] == "sidecar_send_failed" and span.attributes["retry.attempts"] == 2


def test_send_event_is_counted_on_the_enclosing_span(services, telemetry):
    """send_event is high-frequency: counted on the caller's span, no span of its own."""
    from services.sidecar_client import RemoteSidecarClient, RemoteSidecarConfig

    client = RemoteSidecarClient(RemoteSidecarConfig(host="127.0.0.1"), framework="pytest", enabled=False)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("caller"):
        for _ in range(3):
            client.send_event("step", {})
    assert telemetry.span("caller").attributes["crossbridge.services.sidecar.event.count"] == 3
    assert telemetry.spans("services.sidecar.event") == []
