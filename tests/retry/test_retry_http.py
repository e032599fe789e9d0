"""HTTP fault injection on 127.0.0.1: 503 with Retry-After then 200 is retried; 401/404 are not."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.trace import StatusCode
from retry_support import attempts_by_outcome, retry_events

from crossbridge_otel.retry import retry
from crossbridge_otel.targets import Target

FETCH = Target("retry_victims.http", "fetch", "victim.fetch", invoker=retry("default"))


@pytest.fixture
def server():
    """A local server answering a scripted list of (status, headers); it records every request path."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, headers = self.server.script.pop(0) if self.server.script else (200, {})
            self.server.seen.append(self.path)
            body = b"ok" if status == 200 else b"no"
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.script, httpd.seen = [], []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/repo/file"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_503_with_retry_after_is_retried_after_the_requested_delay(instrument, telemetry, server):
    """503 + Retry-After: 1 then 200: two attempts, the event's delay is the server's 1 s."""
    instrument(FETCH, retry_policies="default=3:0.001:2")
    from retry_victims.http import fetch

    server.script = [(503, {"Retry-After": "1"}), (200, {})]
    assert fetch(server.url) == "ok"
    assert len(server.seen) == 2
    span = telemetry.span("victim.fetch")
    (event,) = retry_events(span)
    assert event["error.type"] == "requests.exceptions.HTTPError"
    assert event["retry.delay_s"] == 1.0
    assert span.attributes["retry.attempts"] == 2
    assert span.status.status_code != StatusCode.ERROR
    assert attempts_by_outcome(telemetry, "victim.fetch") == {"retried": 1, "ok": 1}


def test_retry_after_longer_than_the_cap_is_capped(instrument, telemetry, server):
    """A Retry-After above the policy cap waits the cap, never longer."""
    instrument(FETCH, retry_policies="default=3:0.001:0.05")
    from retry_victims.http import fetch

    server.script = [(429, {"Retry-After": "120"}), (200, {})]
    assert fetch(server.url) == "ok"
    (event,) = retry_events(telemetry.span("victim.fetch"))
    assert event["retry.delay_s"] == 0.05


@pytest.mark.parametrize("status", [401, 404])
def test_permanent_http_errors_are_one_attempt(instrument, telemetry, server, status):
    """401 and 404 are not retried: one request, one final retry event, ERROR span."""
    instrument(FETCH)
    from retry_victims.http import fetch

    server.script = [(status, {}), (200, {})]
    with pytest.raises(requests.HTTPError):
        fetch(server.url)
    assert len(server.seen) == 1
    span = telemetry.span("victim.fetch")
    (event,) = retry_events(span)
    assert event["retry.will_retry"] is False
    assert span.attributes["retry.attempts"] == 1
    assert span.status.status_code == StatusCode.ERROR
    assert attempts_by_outcome(telemetry, "victim.fetch") == {"failed": 1}


def test_connection_refused_is_retried_then_gives_up(instrument, telemetry, server):
    """A closed port: every attempt refused, the last ConnectionError re-raised after the policy's attempts."""
    instrument(FETCH)
    from retry_victims.http import fetch

    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(requests.ConnectionError):
        fetch(f"http://127.0.0.1:{port}/x")
    events = retry_events(telemetry.span("victim.fetch"))
    assert [e["retry.will_retry"] for e in events] == [True, True, False]
